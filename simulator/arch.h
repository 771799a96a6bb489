// The target machine: a plain struct loaded from YAML (examples/arch/*.yaml).
// Every field has a documented default (docs/config.md) or is required; loading validates
// ranges and that the buffers can hold at least one array-sized tile.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/dtype.h"

namespace tpusim {

enum class Dataflow : uint8_t { WeightStationary, OutputStationary, InputStationary };
std::string_view dataflow_name(Dataflow d);  // "ws", "os", "is"

struct MxuConfig {
  int64_t rows = 0;                  // required: PE rows (the reduction dimension in ws)
  int64_t cols = 0;                  // required: PE columns
  Dataflow dataflow = Dataflow::WeightStationary;
  DType operand_type = DType::Int8;  // int8 (int32 accumulate) or bf16 (fp32 accumulate)
  double clock_mhz = 700;
  bool weight_double_buffering = true;  // ws/is: stage the next stationary tile during compute
};

struct BufferConfig {
  int64_t bytes = 0;             // required: capacity
  int64_t banks = 1;             // contiguous equal partitions, each with its own port
  int64_t bytes_per_cycle = 0;   // per bank port; 0 in YAML = derived (see docs/config.md)
};

struct VectorOpTiming {
  int64_t latency = 1;   // cycles from the first vector in to its result out
  int64_t interval = 1;  // cycles between successive lane-vectors (1 = one vector per cycle)
};

struct VpuConfig {
  int64_t lanes = 0;  // elements per vector; 0 in YAML = mxu.cols
  VectorOpTiming add, mul, max, exp, reciprocal, rsqrt, reduction, convert;
};

struct DramConfig {
  double bytes_per_cycle = 0;  // required: sustained DRAM bandwidth per MXU clock cycle
  int64_t latency_cycles = 100;
  int64_t channels = 1;        // transfers the DMA engine may have in flight at once
};

struct ArchConfig {
  std::string name;
  std::string source;  // file it came from (for messages)
  MxuConfig mxu;
  BufferConfig unified_buffer;  // activations (MXU left operand, VPU)
  BufferConfig weight_buffer;   // weights / stationary tiles (weight FIFO on TPUv1)
  BufferConfig accumulator;     // int32/fp32 accumulators (MXU output)
  VpuConfig vpu;
  DramConfig dram;
};

// Loads a preset by name (`tpu-v1`, looked up in examples/arch/) or a YAML file path, then
// applies `key=value` overrides (e.g. `mxu.rows=64`) and validates. Throws tpusim::Error.
ArchConfig load_arch(const std::string& name_or_path,
                     const std::vector<std::string>& overrides = {});
ArchConfig parse_arch_yaml(const std::string& text, const std::string& file_name,
                           const std::vector<std::string>& overrides = {});

// The fully resolved configuration as YAML (every field, defaults filled in); parsing it back
// gives the same config.
std::string arch_to_yaml(const ArchConfig& arch);

// Names of the presets shipped in examples/arch/.
std::vector<std::string> arch_preset_names();

}  // namespace tpusim

// The target machine: a plain struct loaded from YAML (examples/arch/*.yaml).
// Every field has a documented default (docs/config.md) or is required; loading validates
// ranges and that the buffers can hold at least one array-sized tile. A default-constructed
// struct carries the same defaults as an absent YAML key.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/dtype.h"
#include "ir/diagnostics.h"
#include "ir/target.h"

namespace tpusim {

// Largest accepted mxu.rows / mxu.cols.
constexpr int64_t kMaxArrayDimension = 16384;
// The largest on-chip buffer (and buffer bandwidth, DRAM bandwidth): 4 GiB. The simulator
// keeps every buffer byte in host memory.
constexpr int64_t kMaxBufferBytes = int64_t{1} << 32;
// The longest latency or issue interval of a unit, in cycles: 2^31 - 1.
constexpr int64_t kMaxCycleCount = (int64_t{1} << 31) - 1;

struct MxuConfig {
  int64_t rows = 0;  // required: PE rows (the reduction dimension in ws)
  int64_t cols = 0;  // required: PE columns
  Dataflow dataflow = Dataflow::WeightStationary;
  DType operand_type = DType::Int8;  // int8 (int32 accumulate) or bf16 (fp32 accumulate)
  double clock_mhz = 700;
  bool weight_double_buffering = true;  // ws/is: stage the next stationary tile during compute

  bool operator==(const MxuConfig&) const = default;
};

struct BufferConfig {
  int64_t bytes = 0;            // required: capacity
  int64_t banks = 1;            // contiguous equal partitions, each with its own port
  int64_t bytes_per_cycle = 0;  // per bank port; 0 in YAML = derived (see docs/config.md)

  bool operator==(const BufferConfig&) const = default;
};

struct VectorOpTiming {
  int64_t latency = 1;   // cycles from the first vector in to its result out
  int64_t interval = 1;  // cycles between successive lane-vectors (1 = one vector per cycle)

  bool operator==(const VectorOpTiming&) const = default;
};

struct VpuConfig {
  int64_t lanes = 0;  // elements per vector; 0 in YAML = mxu.cols
  // Defaults: simple ALU ops are a short pipeline; the transcendental ones are iterative
  // (longer and accepting a vector every other cycle); a reduction is a small adder tree.
  VectorOpTiming add{2, 1}, mul{2, 1}, max{2, 1};
  VectorOpTiming exp{8, 2}, reciprocal{8, 2}, rsqrt{8, 2};
  VectorOpTiming reduction{4, 1};
  VectorOpTiming convert{2, 1};

  bool operator==(const VpuConfig&) const = default;
};

struct DramConfig {
  double bytes_per_cycle = 0;  // required: sustained DRAM bandwidth per MXU clock cycle
  int64_t latency_cycles = 100;
  int64_t channels = 1;  // transfers the DMA engine may have in flight at once

  bool operator==(const DramConfig&) const = default;
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

  bool operator==(const ArchConfig&) const = default;  // compares `source` too
};

// Loads a YAML file, or a preset by name (`tpu-v1` -> `tpu-v1.yaml`, looked up in the
// directories of $TPUSIM_ARCH_PATH, then examples/arch/), then applies `key.path=value`
// overrides (e.g. `mxu.rows=64`, from `--set`) and validates. Throws tpusim::Error.
ArchConfig load_arch(const std::string& name_or_path,
                     const std::vector<std::string>& overrides = {});
ArchConfig parse_arch_yaml(const std::string& text, const std::string& file_name,
                           const std::vector<std::string>& overrides = {});

// The fully resolved configuration as YAML (every field, defaults filled in); parsing it back
// gives the same config.
std::string arch_to_yaml(const ArchConfig& arch);

// One line for listings: "256x256 int8 ws, 700 MHz, unified buffer 24 MiB, ...".
std::string arch_summary(const ArchConfig& arch);

// The array shape and buffer sizes a program is verified against.
TargetLimits target_limits(const ArchConfig& arch);

// Names of the presets shipped in examples/arch/, sorted.
std::vector<std::string> arch_preset_names();

// A byte count in readable units: "24 MiB", "256 B", "1.50 KiB" (binary units; exact when
// the count is a whole number of the unit).
std::string format_byte_size(int64_t bytes);
// `24MiB`, `4 MiB`, `256`, `64KB`: an integer and an optional unit (B, KiB, MiB, GiB, KB, MB,
// GB; case-sensitive). A malformed or too large size is an error at `where`.
int64_t parse_byte_size(const std::string& text, const SourceLocation& where);

}  // namespace tpusim

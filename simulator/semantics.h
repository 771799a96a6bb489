// What each instruction does to the machine's bytes, written as plain loops. This is the
// definition of the instruction set (docs/program-format.md gives the same as pseudocode).
// The reference interpreter runs programs with nothing else; the cycle-level simulator uses
// these for DMA and VPU values and checks its MXU values (PE array or fast kernel) against them.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "ir/program.h"
#include "ir/resource_limits.h"
#include "simulator/npy.h"

namespace tpusim {

// The machine's storage: three on-chip buffers and one byte array per DRAM tensor.
struct MachineState {
  std::array<std::vector<uint8_t>, kBufferCount> buffers;
  std::vector<std::vector<uint8_t>> dram;  // indexed like Program::tensors
};

// Buffers zeroed, DRAM tensors allocated (zeroed). Refuses, before allocating anything, a
// machine whose bytes (machine_state_bytes) are more than limits.max_memory_bytes.
MachineState make_machine_state(const Program& program, const TargetLimits& target, const ResourceLimits& limits = {});
int64_t machine_state_bytes(const Program& program, const TargetLimits& target);

// Bytes moved, for counters. Buffers are indexed by Buffer.
struct Traffic {
  std::array<int64_t, kBufferCount> buffer_read{}, buffer_written{};
  int64_t dram_read = 0, dram_written = 0;
  Traffic& operator+=(const Traffic& o);
};

// One contiguous byte range an instruction touches (the bounding range of a strided access).
struct AccessRange {
  Buffer buffer = Buffer::Unified;
  int64_t begin = 0, end = 0;  // [begin, end)
  bool write = false;
};

// The MXU's stationary tile as the program sees it (ws: weights, is: inputs).
struct StationaryTile {
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> elements;  // rows * cols elements of the operand type, PE order (r, c)
};

// An instruction instance: the instruction and the values of its enclosing loop variables.
struct InstructionInstance {
  const Instruction* instruction = nullptr;
  const int64_t* loop_values = nullptr;
  int64_t address(const BufferRef& ref) const { return ref.address.evaluate(loop_values); }
};

// The byte ranges `instance` reads and writes, with its bounds checked against the buffers
// (a tpusim::Error naming the instruction's line when out of range). `tile` is the current
// stationary tile (for mxu.matmul's vector length and output width).
std::vector<AccessRange> instruction_accesses(const Program& program, const TargetLimits& target,
                                              const InstructionInstance& instance,
                                              const StationaryTile& tile);

// Total bytes a DMA instance moves.
int64_t dma_bytes(const Program& program, const Instruction& in);

void execute_dma(const Program& program, const InstructionInstance& instance, MachineState& state,
                 Traffic& traffic);
void execute_vpu(const InstructionInstance& instance, MachineState& state, Traffic& traffic);
void execute_load_stationary(const InstructionInstance& instance, DType operand_type,
                             const MachineState& state, StationaryTile& tile, Traffic& traffic);

// The MXU's results before they reach the accumulators: out[t][c] (ws/is) or out[m][n] (os),
// in the accumulator type (int32 or fp32 bit patterns in 4 bytes each).
struct MatmulResult {
  int64_t rows = 0, cols = 0;    // number of output vectors, elements per vector
  std::vector<uint32_t> values;  // rows * cols accumulator-type bit patterns
};
MatmulResult reference_matmul(const InstructionInstance& instance, DType operand_type,
                              const MachineState& state, const StationaryTile& tile);
// A matmul vector read through its pattern (vector_offsets), copied to `out` in element order;
// returns `out`'s data, or `src` itself when `offsets` is empty (a contiguous vector).
const uint8_t* gather_vector(const uint8_t* src, const std::vector<int64_t>& offsets, int64_t element_bytes,
                             std::vector<uint8_t>& out);
MatmulResult reference_matmul_os(const InstructionInstance& instance, DType operand_type,
                                 const MachineState& state);
// Writes (or accumulates) results into the accumulators at the instruction's dst.
void write_accumulators(const InstructionInstance& instance, DType operand_type,
                        const MatmulResult& result, MachineState& state, Traffic& traffic);
// Adds one output element to the accumulator at `address` (or overwrites it).
void accumulate_element(DType operand_type, uint8_t* address, uint32_t value, bool accumulate);

// Loads program inputs: `TENSOR.npy` from `directory` when present (shape and type must match),
// otherwise seeded random data. Outputs and scratch tensors start zeroed.
void load_program_inputs(const Program& program, const std::string& directory, uint64_t seed,
                         MachineState& state);
HostTensor tensor_from_state(const Program& program, int tensor, const MachineState& state);

}  // namespace tpusim

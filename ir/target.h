// What a program is checked against: the shape of the array and the sizes of the on-chip
// buffers. The full machine description (simulator/arch.h) extends this with timing.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "ir/dtype.h"

namespace tpusim {

enum class Dataflow : uint8_t { WeightStationary, OutputStationary, InputStationary };
std::string_view dataflow_name(Dataflow d);                    // "ws", "os", "is"
std::optional<Dataflow> parse_dataflow(std::string_view name);  // inverse of dataflow_name

// The on-chip buffers a program addresses. `ub` holds activations, `wb` weights (the weight
// FIFO), `acc` the MXU's int32/fp32 accumulators.
enum class Buffer : uint8_t { Unified, Weight, Accumulator };
constexpr int kBufferCount = 3;
std::string_view buffer_name(Buffer b);  // "ub", "wb", "acc"
std::optional<Buffer> parse_buffer(std::string_view name);

struct TargetLimits {
  int64_t rows = 0, cols = 0;
  Dataflow dataflow = Dataflow::WeightStationary;
  DType operand_type = DType::Int8;
  int64_t buffer_bytes[kBufferCount] = {0, 0, 0};
};

}  // namespace tpusim

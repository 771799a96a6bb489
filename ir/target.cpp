#include "ir/target.h"

namespace tpusim {

std::string_view dataflow_name(Dataflow d) {
  switch (d) {
    case Dataflow::WeightStationary: return "ws";
    case Dataflow::OutputStationary: return "os";
    case Dataflow::InputStationary: return "is";
  }
  return "?";
}

std::optional<Dataflow> parse_dataflow(std::string_view name) {
  if (name == "ws") return Dataflow::WeightStationary;
  if (name == "os") return Dataflow::OutputStationary;
  if (name == "is") return Dataflow::InputStationary;
  return std::nullopt;
}

std::string_view buffer_name(Buffer b) {
  switch (b) {
    case Buffer::Unified: return "ub";
    case Buffer::Weight: return "wb";
    case Buffer::Accumulator: return "acc";
  }
  return "?";
}

std::optional<Buffer> parse_buffer(std::string_view name) {
  if (name == "ub") return Buffer::Unified;
  if (name == "wb") return Buffer::Weight;
  if (name == "acc") return Buffer::Accumulator;
  return std::nullopt;
}

}  // namespace tpusim

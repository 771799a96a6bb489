// One frame of the PE array as text for a terminal (`tpusim explain`): per PE the stationary
// operand, the operand moving through and the partial sum; the skewed operands waiting to
// enter; the results leaving the bottom; the units and the running counters. With `color`,
// ANSI colours mark active and idle PEs; the characters are the same either way (active PEs
// are marked `*`), so a captured screen compares with the uncoloured text.
#pragma once

#include <string>

#include "simulator/array_frames.h"

namespace tpusim {

struct ArrayViewOptions {
  bool color = false;
  DType operand_type = DType::Int8;
  Dataflow dataflow = Dataflow::WeightStationary;
  int64_t total_cycles = 0;  // the run's, for "cycle N of T"
};

std::string render_frame_text(const ArrayFrame& frame, const ArrayViewOptions& options);

// A value as the views print it: integers exactly; floats with up to 4 significant digits.
std::string format_view_value(double value);

}  // namespace tpusim

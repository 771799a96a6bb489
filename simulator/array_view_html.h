// The frames of the PE array as one self-contained animated HTML page (`tpusim explain ...
// --html`): play, pause, step, a scrubber, the cycle counter, a legend and the running counters.
// One frame per cycle recorded, each drawn from the frame's own registers; nothing is fetched.
// `#cycle=N` in the address opens the page at cycle N.
#pragma once

#include <string>
#include <vector>

#include "simulator/array_frames.h"
#include "simulator/array_view_text.h"

namespace tpusim {

struct AnimationPage {
  std::string title;
  std::string intro;  // plain text shown above the animation (the matrices, the tiles)
  std::string outro;  // plain text shown below it (the result)
  ArrayViewOptions view;
  size_t start_frame = 0;  // the frame shown first (unless the address says #cycle=N)
};

std::string animation_html(const std::vector<ArrayFrame>& frames, const AnimationPage& page);

}  // namespace tpusim

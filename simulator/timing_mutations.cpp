#include "simulator/timing_mutations.h"

namespace tpusim {

TimingMutations& timing_mutations() {
  static TimingMutations mutations;
  return mutations;
}

}  // namespace tpusim

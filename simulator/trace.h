// Instruction timelines in the Chrome/Perfetto trace-event JSON format: one track per unit,
// one slice per instruction instance from issue to completion (1 cycle = 1 "us" in the
// viewer). Open the file at ui.perfetto.dev or chrome://tracing.
#pragma once

#include <string>

#include "simulator/simulator.h"

namespace tpusim {

std::string trace_json(const Program& program, const SimulationResult& result);

}  // namespace tpusim

// What the report of a compiled model's run knows beyond the simulation
// (simulator/report_model.h): the graph op behind each label, how its GEMM fits the array,
// the compiler's choices, and which program tensors hold weights.
#pragma once

#include "compiler/pipeline.h"
#include "simulator/report_model.h"

namespace tpusim {

ReportContext report_context(const CompileResult& compiled, const ArchConfig& arch);

// What the compiler chose for one kernel, a line each (tiling and why, what was folded in, what
// stays on chip): the report's "compiler choices".
std::vector<std::string> kernel_choices(const Kernel& kernel);

}  // namespace tpusim

// What the report of a compiled model's run knows beyond the simulation
// (simulator/report_model.h): the graph op behind each label, how its GEMM fits the array,
// the compiler's choices, and which program tensors hold weights.
#pragma once

#include "compiler/pipeline.h"
#include "simulator/report_model.h"

namespace tpusim {

ReportContext report_context(const CompileResult& compiled, const ArchConfig& arch);

}  // namespace tpusim

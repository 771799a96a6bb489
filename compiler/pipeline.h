// The compiler pipeline: model description -> graph IR -> GEMM tiles -> program.
// (The passes arrive with the compiler; this header fixes where the pipeline lives.)
#pragma once

#include <string>
#include <vector>

namespace tpusim {

// Names of the passes in the order they run.
std::vector<std::string> pass_names();

}  // namespace tpusim

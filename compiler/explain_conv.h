// `tpusim explain conv`: how a convolution unrolls into a GEMM. The im2col matrix with the
// input element each entry reads (padding and dilation visible), how the compiler cuts it into
// tiles for the array and why, the bytes and cycles of each --im2col mode, and the frames of one
// tile of the compiled program on the PE-level array.
#pragma once

#include <string>
#include <vector>

#include "compiler/explain_model.h"

namespace tpusim {

// The layer in the model format's own words (docs/model-format.md): each field is the YAML
// value as written ("3", "[3, 1]", "same", "causal").
struct ConvSpec {
  int64_t in_channels = 2, out_channels = 3;
  std::string size = "5x5";  // input height x width, or one length for a 1-D conv
  std::string kernel = "3", stride = "1", padding = "1", dilation = "1";
  int64_t groups = 1;
  std::string type = "int8";
};

// The one-layer model of `spec`, as YAML text.
std::string conv_model_yaml(const ConvSpec& spec, uint64_t seed);

struct ConvExplanation {
  std::string text;         // the unrolling, the tiling, the modes (what the terminal prints first)
  ModelRun run;             // compiled with the chosen --im2col mode
  std::vector<ProgramTile> tiles;
};

// `rows_shown`: how many rows of the im2col matrix to print (every row when it has fewer).
ConvExplanation explain_conv(const ConvSpec& spec, const ArchConfig& arch, Im2colMode im2col, uint64_t seed,
                             int64_t rows_shown);

}  // namespace tpusim

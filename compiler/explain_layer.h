// `tpusim explain layer MODEL --layer NAME`: one layer of a real model on a machine. Its GEMM
// (M, K, N), the tiling the compiler chose and why, its cycles by cause, how many PEs its
// tiles leave idle and what would fill them; then its first tile's shape run on a small array.
#pragma once

#include <string>

#include "compiler/explain_model.h"

namespace tpusim {

struct LayerExplanation {
  std::string text;
  GemmShape first_tile;  // the first weight tile's GEMM (0s when the layer has no GEMM)
};

LayerExplanation explain_layer(const ModelRun& run, const ArchConfig& arch, const std::string& layer,
                               const ArchConfig& small_arch, const std::string& model_file);

}  // namespace tpusim

// `tpusim explain attention`: how attention is tiled. The score tiles under the causal/window
// mask (empty, partial, full), the order the flash lowering visits them with the running row
// max and sum, where the key/value tiles live (the ring in the weight buffer), and the bytes and
// cycles of the flash and materialized lowerings, both compiled and run.
#pragma once

#include <string>

#include "compiler/explain_model.h"

namespace tpusim {

struct AttentionSpec {
  int64_t seq = 16, heads = 1, head_dim = 4, window = 0;
  bool causal = false;
};

std::string attention_model_yaml(const AttentionSpec& spec, uint64_t seed);

// The whole explanation as text. `arch` must multiply bf16 (the model's type).
std::string explain_attention(const AttentionSpec& spec, const ArchConfig& arch, uint64_t seed);

}  // namespace tpusim

// The model description format (docs/model-format.md): a hand-written YAML list of layers that
// run in order — conv, linear, pooling, attention, ... — turned into the graph IR with every
// weight, int8 quantization scale and shape filled in. Examples live in examples/models/.
#pragma once

#include <string>

#include "ir/graph.h"
#include "ir/resource_limits.h"

namespace tpusim {

// Reads a model file. Weight files (`weights: w.npy`) are found relative to the model file.
// Every problem is a tpusim::Error located at file:line:column with the key path, such as
// `layers[3].conv.kernel`; shape problems found by infer_shapes point at the layer's line.
// Sizes are bounded (ir/sizes.h), and the inputs' and weights' bytes together must fit
// limits.max_memory_bytes: a model that cannot fit is refused before any data is made.
Graph load_model_yaml(const std::string& path, const ResourceLimits& limits = {});

// The same from text; `file_name` names the file in messages and anchors relative weight paths.
Graph parse_model_yaml(const std::string& text, const std::string& file_name, const ResourceLimits& limits = {});

}  // namespace tpusim

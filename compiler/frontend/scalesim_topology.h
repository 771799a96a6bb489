// SCALE-Sim's topology files (docs/scalesim.md): one layer a line, either convolutions
// (`Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter,
// Strides,`) or GEMMs (`Layer, M, N, K,`), read as SCALE-Sim reads them: no padding, batch 1,
// every layer an independent conv or linear with its own input. Examples in examples/scalesim/.
#pragma once

#include <cstdint>
#include <string>

#include "ir/dtype.h"
#include "ir/graph.h"
#include "ir/resource_limits.h"

namespace tpusim {

// Which of SCALE-Sim's two layouts a file holds. SCALE-Sim itself is told on its command line
// and skips the first line unread; tpusim reads the header row's names instead, unless told.
enum class TopologyFormat : uint8_t {
  Detect,  // from the header row
  Conv,    // `Layer name, IFMAP Height, ..., Strides,`; the first line is the header, unchecked
  Gemm,    // `Layer, M, N, K,`; the first line is the header, unchecked
};

struct ScaleSimOptions {
  TopologyFormat format = TopologyFormat::Detect;  // `format: conv|gemm` forces a layout
  DType type = DType::Int8;  // int8 (default scales as the model format) or bf16
  uint64_t seed = 1;         // base seed of the seeded weights
};

// Reads a topology file. Every problem is a tpusim::Error at file:line:column naming the column
// (`Filter Height`) and what to do. Sizes are bounded as in the model format (ir/sizes.h), and
// the inputs' and weights' bytes together must fit limits.max_memory_bytes.
Graph load_scalesim_topology(const std::string& path, const ScaleSimOptions& options = {},
                             const ResourceLimits& limits = {});

// The same from text; `file_name` names the file in messages and gives the graph its name.
Graph parse_scalesim_topology(const std::string& text, const std::string& file_name,
                              const ScaleSimOptions& options = {},
                              const ResourceLimits& limits = {});

}  // namespace tpusim

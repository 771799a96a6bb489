// The compiler's middle form: every graph op unrolled into a kernel — a GEMM for the matrix
// unit (convolution via implicit im2col, linear), or a vector/data-movement kernel for the VPU
// and DMA. The tiling pass (compiler/passes/tile_kernels.cpp) fills in tile sizes and buffer
// slot sizes; the emitter (emit_program.cpp) places the slots in the buffers as rings and
// writes the program. Printed by `tpusim compile --emit lowered|tiled`.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "compiler/quantization.h"
#include "ir/graph.h"
#include "simulator/arch.h"

namespace tpusim {

enum class Im2colMode : uint8_t {
  Buffer,       // default: the input window is loaded into the unified buffer once, and the
                // MXU reads it with an im2col address pattern (one matmul per output row and
                // kernel tap, TPUv1 style)
  Dma,          // the DMA walks the input in DRAM with im2col address patterns (re-reading
                // each input element once per kernel tap, but filling more array rows)
  Materialize,  // im2col matrices are written to DRAM first, then read as plain matrices
};
std::string_view im2col_mode_name(Im2colMode m);  // "buffer", "dma", "materialize"

// What happens to accumulators (or vector results) on their way out.
struct Epilogue {
  bool requantize = false;  // int8: acc -> int8 with `scale`; bf16: fp32 -> bf16
  Requantization scale;
  enum class Activation : uint8_t { None, Relu, Clip } activation = Activation::None;
  double clip_low = 0, clip_high = 0;  // in the output's element values (already quantized for int8)
  std::string fused_op;                // name of the graph op folded in here ("" = none)
};

// How a GEMM's reduction dimension K = (kh, kw, c) (c innermost; a linear layer's K is its
// input features) is cut into the boxes that one load_stationary holds: `count` runs of
// consecutive K indices whose sizes differ by at most one, box b = [begin(b), begin(b + 1)).
// A box may start and end anywhere in a kernel tap or row; each is at most the array's rows.
struct KBoxes {
  int64_t K = 0, count = 0;
  int64_t begin(int64_t b) const;  // b = count gives K
  int64_t size(int64_t b) const { return begin(b + 1) - begin(b); }
  int64_t largest() const { return count > 0 ? (K + count - 1) / count : 0; }
  int64_t smallest() const { return count > 0 ? K / count : 0; }
  int64_t box_of(int64_t k) const;  // the box holding index k
};

// A rectangular part of a K box in (kh, kw, c): kh x kw taps from (kh0, kw0) by c channels
// from c0, starting `offset` indices into the box. A box is one to five of them, in K order.
struct KPiece {
  int64_t kh0 = 0, kw0 = 0, c0 = 0, kh = 1, kw = 1, c = 1, offset = 0;
  int64_t size() const { return kh * kw * c; }
};
// "4" when every box has 4 indices, "3-4" when they differ.
std::string k_box_sizes(const KBoxes& boxes);
// The pieces of K indices [k0, k1) of a reduction of kernel_h x kernel_w taps by `channels`.
std::vector<KPiece> k_pieces(int64_t k0, int64_t k1, int64_t kernel_h, int64_t kernel_w, int64_t channels);

struct GemmTiling {
  bool chosen = false;
  int64_t m_tile = 0, n_tile = 0;  // output pixels (rows) and output channels (columns) per tile
  KBoxes k_boxes;
  int64_t m_tiles = 0, n_tiles = 0;
  int64_t k_tiles() const { return k_boxes.count; }
  bool weights_resident = false;  // weights stay in wb: all k-tiles of an n-tile across its M tiles
                                  // (or, with m_outer, every weight tile for the whole kernel)
  bool m_outer = false;           // loop order: M tiles outer, n-tiles inner (each input window
                                  // is loaded once and used by every n-tile)
  std::string why;                // the reasoning, for the report
  // Buffer use of one tile set, bytes (filled by the tiling pass, placed by allocation).
  int64_t a_slot_bytes = 0, b_slot_bytes = 0, acc_slot_bytes = 0, out_slot_bytes = 0;
  int64_t b_slots = 2;  // ring slots (or k_tiles when resident)
  // A (DMA-mode im2col rows, linear and matmul rows): two ring slots, or, when every (M tile,
  // K box) slot of one group fits beside the output slots and there is more than one n-tile,
  // m_tiles x k_tiles slots: A is loaded once and read by every n-tile.
  bool a_resident = false;
  int64_t a_slots = 2;
  // Buffer-mode im2col: a tile is `tile_rows` whole output rows, or one run of `tile_cols`
  // pixels of a row; its input window (rows x padded width x channels) sits in ub.
  int64_t tile_rows = 1, tile_cols = 0, window_rows = 0, window_cols = 0;
};

// A convolution's output kept in the unified buffer for the next convolution instead of going
// through DRAM (chosen by the allocation pass). The region holds the tensor in the consumer's
// layout: channels innermost (HWC), with the consumer's zero padding around each image, so the
// consumer's im2col windows are simply parts of it.
struct ResidentTensor {
  int64_t base = 0, bytes = 0;               // ub[base, base + bytes)
  int64_t pad_top = 0, pad_left = 0;         // where the image starts inside the padding
  int64_t height = 1, width = 0, channels = 0;  // padded rows and columns per image, channels
  bool padded = false;                          // the reader pads: the region needs zeros first
};

struct BufferPlan {
  std::optional<ResidentTensor> output;  // written into the unified buffer, not DRAM
  std::optional<ResidentTensor> input;   // read from the unified buffer, not DRAM
  int64_t budget = 0;                    // ub bytes [0, budget) the kernel's own slots may use
  std::string note;                      // what allocation decided, for the report
};

// C[M, N] = A[M, K] . B[K, N] (+ bias) for each group; A is the input seen through im2col.
// For a batched matmul the groups are the batch entries and B is the second input.
struct GemmKernel {
  std::string name;  // the graph op; labels every instruction
  OpKind op = OpKind::Conv;
  int input = -1, weight = -1, bias = -1, output = -1;  // graph values
  ConvGeometry conv;  // Linear: batch = rows, in_channels = K, kernel/out size 1
  int64_t groups = 1, M = 0, K = 0, N = 0;  // per group
  Epilogue epilogue;
  Im2colMode im2col = Im2colMode::Buffer;
  BufferPlan buffers;
  GemmTiling tiling;
};

// Depthwise convolution on the vector unit: per kernel tap, a broadcast multiply-add per
// channel row. Chosen over the MXU when the estimate says it is faster (see `why`).
struct DepthwiseKernel {
  std::string name;
  int input = -1, weight = -1, bias = -1, output = -1;
  ConvGeometry conv;
  Epilogue epilogue;
  std::string why;
};

// Elementwise and data-movement work for the VPU/DMA.
struct VectorKernel {
  enum class Kind : uint8_t {
    Add, Mul, Relu, Clip, Gelu, MaxPool, AvgPool, GlobalAvgPool, Copy, Transpose, Concat, Softmax, LayerNorm
  };
  Kind kind = Kind::Copy;
  std::string name;
  std::vector<int> inputs;
  int output = -1;
  Epilogue epilogue;                // requantization/activation of the result
  int64_t add_multiplier[2] = {0, 0};  // Add (int8): per-input multipliers, shift kAddShift
  ConvGeometry pool;                // pools
  std::vector<int64_t> perm;        // Transpose
  int64_t axis = 0;                 // Concat
  double epsilon = 1e-5;            // LayerNorm
};

// How attention is lowered (`--attention`).
enum class AttentionLowering : uint8_t {
  Materialized,  // scores = q.k^T for every head (in the unified buffer when they fit, else
                 // spilled to DRAM), then softmax on the VPU, then probabilities . v
  Flash,         // per block of queries, blocks of keys/values with a running row max and sum
                 // on the VPU; the partial output is rescaled; the score matrix never exists
};
std::string_view attention_lowering_name(AttentionLowering l);  // "materialized", "flash"

// Where a score tile (a block of queries x a block of keys) stands under the causal/window
// mask: no visible entry (skipped: no DMA, MXU or VPU work), some (computed, then masked), all.
enum class TileClass : uint8_t { Empty, Partial, Full };

// Where an attention kernel's slots sit (bytes). Unified buffer: q tiles (2 slots), the fp32
// scores of one tile (flash: one working copy; materialized, spilled: 2 staging slots),
// probability tiles in the operand type (2 slots), mask tiles (2 slots, each the tile in fp32
// then as loaded), the fp32 running
// output (flash), output tiles (2 slots), per-row statistics, and (materialized) either the
// whole score and probability matrices or 2 slots of softmax row chunks. Accumulators: 2
// score slots and 2 slots of p . v results. Weight buffer: key/value tiles.
struct AttentionBuffers {
  int64_t q = 0, q_slot = 0;
  int64_t s = 0, s_slot = 0;
  int64_t p = 0, p_slot = 0;
  int64_t mask = 0, mask_slot = 0;
  int64_t o = 0;
  int64_t out = 0, out_slot = 0;
  int64_t stats = 0;  // one fp32 per query row each: flash m, l, t, t2, c0, c1; materialized max, sum
  int64_t chunk = 0, chunk_slot = 0, chunk_rows = 0;  // materialized, spilled: softmax row chunks
  int64_t scores = 0, probs = 0;                  // materialized, on chip
  int64_t ub_bytes = 0;
  int64_t acc_s = 0, acc_s_slot = 0, acc_pv = 0, acc_pv_slot = 0, acc_bytes = 0;
  int64_t kv_slot = 0, kv_slots = 0;  // kv_slots: every slot that fits (the tiling uses 2 x kv_ring)
};

struct AttentionTiling {
  bool chosen = false;
  int64_t q_block = 0, k_block = 0;    // queries (Br) and keys (Bc) per score tile
  int64_t q_blocks = 0, k_blocks = 0;  // per head
  int64_t d_chunk = 0, dv_chunk = 0;   // head dim per load_stationary (<= rows); value dim per matmul (<= cols)
  // Score tiles per head by class (the same for every head), and for the whole op.
  int64_t empty = 0, partial = 0, full = 0;
  bool scores_on_chip = false;  // materialized: the score matrix stays in the unified buffer
  // Key/value tiles stay in the weight buffer while blocks of queries still see them (loaded
  // once per head), in rings of kv_ring slots each; otherwise they are loaded for every use.
  bool kv_resident = false;
  int64_t kv_ring = 0;
  std::vector<int64_t> last_block;  // per key tile: the last block of queries that sees it
  // The masks of partial tiles, built once in the unified buffer (0 where visible, -3e38 where
  // masked) and added to each partial tile; a partial tile's pattern depends only on its
  // queries' offset from its keys (i0 - j0) and its shape. Empty: masked row by row instead.
  struct MaskPattern {
    int64_t offset = 0, rows = 0, cols = 0;  // i0 - j0, tile shape
    bool operator==(const MaskPattern&) const = default;
  };
  std::vector<MaskPattern> mask_patterns;
  int64_t patterns_base = 0;  // ub address of the first; each is rows x cols fp32, q_block x k_block apart
  AttentionBuffers buffers;
  std::string why;
  int64_t tiles() const { return empty + partial + full; }
};

// Multi-head attention: per batch entry and query head h (key/value head h / (heads /
// kv_heads)), softmax(q . k^T * scale + mask) . v, unrolled into two GEMMs per score tile with
// the softmax between them on the VPU.
struct AttentionKernel {
  std::string name;
  int q = -1, k = -1, v = -1, mask = -1, output = -1;  // graph values (mask: -1 = none)
  int64_t batch = 1, seq_q = 0, seq_k = 0, heads = 1, kv_heads = 1, head_dim = 0, value_dim = 0;
  bool causal = false;
  int64_t window = 0;  // 0 = every position
  double scale = 1;
  AttentionLowering lowering = AttentionLowering::Flash;
  Epilogue epilogue;  // none: attention rounds its fp32 result to the output type once
  AttentionTiling tiling;

  // The keys of [j0, j1] that query i sees under the causal/window mask: one run, [first,
  // last], empty when first > last (the reference masks j > i and j <= i - window).
  std::pair<int64_t, int64_t> visible_keys(int64_t i, int64_t j0, int64_t j1) const {
    return {window > 0 ? std::max(j0, i - window + 1) : j0, causal ? std::min(j1, i) : j1};
  }
  // The class of the score tile of queries [i0, i0 + rows) and keys [j0, j0 + cols).
  TileClass classify(int64_t i0, int64_t rows, int64_t j0, int64_t cols) const;
  std::vector<int> inputs() const;  // q, k, v[, mask]
  std::string heads_text() const;   // "12 heads", "16 heads sharing 4 key/value heads", "1 head"
};

using Kernel = std::variant<GemmKernel, DepthwiseKernel, VectorKernel, AttentionKernel>;

// Kernels in execution order, with the graph they came from.
struct KernelModule {
  Graph graph;
  std::vector<Kernel> kernels;
  // Values that live in DRAM under their graph names (every value: inputs, weights,
  // activations; intermediate activations are DRAM scratch in this version).
  std::vector<int> dram_values;
};

std::string kernel_name(const Kernel& k);
// Where the graph op `name` was written (its model line), for errors about it.
SourceLocation op_location(const Graph& graph, const std::string& name);
std::string print_kernels(const KernelModule& module, bool with_tiling);

}  // namespace tpusim

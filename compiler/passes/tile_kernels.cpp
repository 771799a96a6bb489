// tile_kernels: fit every GEMM to the array and the buffers.
//
// Weight-stationary mapping: K -> array rows, N -> array columns, M streams through. The K
// dimension of a convolution is (kh, kw, c) with c innermost; it is cut into ceil(K / rows)
// "K boxes" of consecutive indices, balanced, each filling up to all rows of one
// load_stationary whatever taps and kernel rows it crosses.
// The M tile is the largest that lets two A slots and two output slots fit the unified
// buffer and two accumulator slots fit the accumulators (double buffering: each tile uses at
// most half), rounded down to whole output rows when it spans more than one.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "compiler/passes/passes.h"
#include "ir/sizes.h"

namespace tpusim {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Saturating: counts past int64 are simply "too many".
int64_t times(int64_t a, int64_t b) { return checked_mul(a, b).value_or(INT64_MAX); }

// The instructions the program will need at the least, added up kernel by kernel as each is
// tiled, so that a model too large for the machine is refused here, in microseconds, instead
// of after the emitter has built millions of instructions. Each kernel's floor counts only
// instructions that every lowering of its tiles must have (a matmul per output tile and
// k-tile, a load_stationary per weight tile, a store per unified buffer's worth of output).
class InstructionBudget {
 public:
  InstructionBudget(const Graph& graph, const ArchConfig& arch, int64_t limit)
      : graph_(graph), arch_(arch), limit_(limit) {}

  // Fails unless `floor` more instructions (for op `name`, cut into `tiles` tiles) fit.
  void require(const std::string& name, int64_t floor, int64_t tiles) const {
    if (checked_add(used_, floor).value_or(INT64_MAX) <= limit_) return;
    throw Error(op_location(graph_, name),
                fmt::format("the program for '{}' on '{}' needs more than {} instructions, the most a compiled program may "
                            "have (the count passes it at op '{}', cut into {} tiles; the compiler does not fold tile loops "
                            "into repeats yet); compile for a machine with a larger array or buffers",
                            graph_.name, arch_.name, limit_, name, tiles == INT64_MAX ? "more than 2^63" : std::to_string(tiles)));
  }
  void charge(const std::string& name, int64_t floor, int64_t tiles) {
    require(name, floor, tiles);
    used_ += floor;
  }

 private:
  const Graph& graph_;
  const ArchConfig& arch_;
  const int64_t limit_;
  int64_t used_ = 0;
};

// A GEMM: a matmul per (group, M tile, n-tile, k-tile), a load_stationary per weight tile.
void charge_gemm(InstructionBudget& budget, const GemmKernel& k) {
  const GemmTiling& t = k.tiling;
  const int64_t weight_tiles = times(times(k.groups, t.n_tiles), t.k_tiles());
  budget.charge(k.name, times(weight_tiles, checked_add(t.m_tiles, 1).value_or(INT64_MAX)), times(weight_tiles, t.m_tiles));
}

// Vector and VPU-depthwise kernels: at least one store per unified buffer's worth of output.
void charge_output_chunks(InstructionBudget& budget, const Graph& graph, const std::string& name, int output,
                          const ArchConfig& arch) {
  const Value& v = graph.values.at(static_cast<size_t>(output));
  const int64_t bytes = times(v.element_count(), dtype_size(v.dtype));
  const int64_t chunks = ceil_div(bytes, arch.unified_buffer.bytes);
  budget.charge(name, chunks, chunks);
}

// K = (kh, kw, c) in as few boxes as the array's rows allow, ceil(K / rows), of balanced sizes.
// A box may cross taps and kernel rows: the DMA loads its pieces, and in the buffer the MXU
// reads it from the input window with a vector pattern (emit_program).
KBoxes choose_k_boxes(const GemmKernel& k, int64_t rows) { return KBoxes{k.K, ceil_div(k.K, rows)}; }

// "3x3 taps x 64 channels = 576 in 3 boxes of 192 of 256 array rows" (a linear layer: its K).
std::string k_box_text(const GemmKernel& k, const GemmTiling& t, int64_t rows) {
  const bool taps = k.op == OpKind::Conv;
  const int64_t kw = k.conv.kernel.back(), kh = k.conv.kernel.size() == 2 ? k.conv.kernel[0] : 1;
  return fmt::format("K {}{} in {} of {} of {} array rows", taps ? fmt::format("{}x{} taps x {} channels = ", kh, kw, k.conv.in_channels / k.groups) : "",
                     k.K, counted(t.k_tiles(), "box", "boxes"), k_box_sizes(t.k_boxes), rows);
}

// The model's element type must be what the matrix unit multiplies, and a bias is added in
// the accumulators, so it has the accumulator type.
void check_types(const Graph& graph, const std::string& name, int input_value, int bias_value, const ArchConfig& arch) {
  const Value& input = graph.values.at(static_cast<size_t>(input_value));
  if (input.dtype != arch.mxu.operand_type) {
    throw Error(input.location.line > 0 ? input.location : SourceLocation{graph.file, 0, 0, ""},
                fmt::format("op '{}' multiplies {} values but the matrix unit of '{}' multiplies {}; use a model of "
                            "type {} (or a machine with operand_type: {})", name, dtype_name(input.dtype), arch.name,
                            dtype_name(arch.mxu.operand_type), dtype_name(arch.mxu.operand_type), dtype_name(input.dtype)));
  }
  if (bias_value >= 0) {
    const Value& bias = graph.values.at(static_cast<size_t>(bias_value));
    const DType wanted = accumulator_type(arch.mxu.operand_type);
    if (bias.dtype != wanted) {
      throw Error(bias.location.line > 0 ? bias.location : SourceLocation{graph.file, 0, 0, ""},
                  fmt::format("op '{}': its bias '{}' is {} but is added in the accumulators, which hold {}; give the "
                              "bias as {}", name, bias.name, dtype_name(bias.dtype), dtype_name(wanted), dtype_name(wanted)));
    }
  }
}

void require_weight_stationary(const ArchConfig& arch, const Graph& graph) {
  if (arch.mxu.dataflow != Dataflow::WeightStationary) {
    throw Error({graph.file, 0, 0, ""},
                fmt::format("the compiler emits weight-stationary programs, but arch '{}' has dataflow: {}; use a ws "
                            "target (e.g. --set mxu.dataflow=ws) — os and is programs can be written by hand",
                            arch.name, dataflow_name(arch.mxu.dataflow)));
  }
}

// Buffer-mode M tiles: whole output rows (as many as fit), else a run of one row. Returns
// false when not even one output pixel's window fits.
bool tile_window(GemmKernel& k, const ArchConfig& arch, int64_t e, int64_t e_out) {
  GemmTiling& t = k.tiling;
  const ConvGeometry& c = k.conv;
  const bool two_d = c.kernel.size() == 2;
  const int64_t channels = c.in_channels / k.groups;
  const int64_t out_h = two_d ? c.out_size[0] : 1, out_w = c.out_size.back();
  const int64_t kh = two_d ? c.kernel[0] : 1, sh = two_d ? c.strides[0] : 1, dh = two_d ? c.dilations[0] : 1;
  // Saturating: a candidate tile far too large for any buffer must compare as too large.
  auto times = [](int64_t a, int64_t b) { return checked_mul(a, b).value_or(INT64_MAX); };
  auto plus = [](int64_t a, int64_t b) { return checked_add(a, b).value_or(INT64_MAX); };
  auto window_rows = [&](int64_t rows) { return plus(times(rows - 1, sh), (kh - 1) * dh + 1); };
  auto window_cols = [&](int64_t cols) {
    return plus(times(cols - 1, c.strides.back()), (c.kernel.back() - 1) * c.dilations.back() + 1);
  };
  // Windows are not loaded when the input is resident; output slots are not needed when the
  // output is (the epilogue writes into the resident tensor).
  const bool windows = !k.buffers.input, out_slots = !k.buffers.output;
  const int64_t budget = k.buffers.budget > 0 ? k.buffers.budget : arch.unified_buffer.bytes;
  auto fits = [&](int64_t rows, int64_t cols) {
    const int64_t window = windows ? times(times(times(window_rows(rows), window_cols(cols)), channels), e) : 0;
    const int64_t pixels = times(rows, cols);
    const int64_t out = out_slots ? times(times(pixels, t.n_tile), e_out) : 0;
    return plus(times(2, window), times(2, out)) <= budget && times(times(pixels, t.n_tile), 8) <= arch.accumulator.bytes;
  };
  // `fits` only gets harder as a tile grows, so the largest tile that fits is found by bisection.
  auto largest = [](int64_t low, int64_t high, auto&& ok) {  // ok(low) holds; the largest n <= high with ok(n)
    while (low < high) {
      const int64_t mid = low + (high - low + 1) / 2;
      if (ok(mid)) low = mid; else high = mid - 1;
    }
    return low;
  };
  int64_t rows = 1, cols = out_w;
  if (fits(1, out_w)) {
    rows = largest(1, out_h, [&](int64_t r) { return fits(r, out_w); });
  } else {
    if (!fits(1, 1)) return false;
    cols = largest(1, out_w, [&](int64_t c) { return fits(1, c); });
  }
  t.tile_rows = rows;
  t.tile_cols = cols;
  t.window_rows = window_rows(rows);
  t.window_cols = window_cols(cols);
  t.m_tile = rows * cols;
  t.m_tiles = c.batch * ceil_div(out_h, rows) * ceil_div(out_w, cols);
  t.a_slot_bytes = windows ? t.window_rows * t.window_cols * channels * e : 0;
  t.out_slot_bytes = out_slots ? t.m_tile * t.n_tile * e_out : 0;
  t.acc_slot_bytes = t.m_tile * t.n_tile * 4;
  return true;
}

void tile_gemm(GemmKernel& k, const ArchConfig& arch, const Graph& graph, InstructionBudget& budget) {
  require_weight_stationary(arch, graph);
  check_types(graph, k.name, k.input, k.bias, arch);
  const int64_t rows = arch.mxu.rows, cols = arch.mxu.cols;
  const int64_t e = dtype_size(arch.mxu.operand_type);
  const int64_t e_out = dtype_size(graph.values.at(static_cast<size_t>(k.output)).dtype);
  GemmTiling& t = k.tiling;
  const int64_t channels = k.conv.in_channels / k.groups;
  t.n_tile = std::min(k.N, cols);
  t.n_tiles = ceil_div(k.N, t.n_tile);
  const std::string earlier = t.why.empty() ? "" : t.why + "; ";
  std::string fallback;

  // Weights: keep every k-tile of an n-tile in wb when they fit (reused by every M tile),
  // else stream them through as many slots as the weight buffer holds (a FIFO of tiles: the DMA
  // runs that many tiles ahead of the array).
  const int64_t wb = arch.weight_buffer.bytes;
  auto plan_weights = [&](KBoxes boxes) {
    t.k_boxes = boxes;
    t.b_slot_bytes = boxes.largest() * t.n_tile * e;
    t.weights_resident = t.k_tiles() * t.b_slot_bytes <= wb;
    t.b_slots = t.weights_resident ? t.k_tiles() : wb / t.b_slot_bytes;
    if (t.b_slots < 1) {
      throw Error(op_location(graph, k.name),
                  fmt::format("op '{}': one weight tile ({} x {} x {} bytes) does not fit the {}-byte weight "
                              "buffer; give the machine a larger weight_buffer", k.name, boxes.largest(), t.n_tile, e, wb));
    }
  };

  if (k.op == OpKind::Conv && k.im2col == Im2colMode::Buffer) {
    plan_weights(choose_k_boxes(k, rows));
    if (tile_window(k, arch, e, e_out)) {
      t.chosen = true;
      charge_gemm(budget, k);
      // Loop order for reuse: with n-tiles outer every input window is read once per n-tile;
      // with M tiles outer once, but the weights are read once per M tile unless all of them
      // fit the weight buffer. Take the order that moves fewer DRAM bytes.
      std::string order;
      if (t.n_tiles > 1 && !k.buffers.input) {
        const int64_t windows = t.m_tiles * t.a_slot_bytes * k.groups;
        const int64_t weights = k.K * k.N * e * k.groups;
        const bool all_resident = t.k_tiles() * t.n_tiles * t.b_slot_bytes <= wb;
        const int64_t n_outer = t.n_tiles * windows + (t.weights_resident ? 1 : t.m_tiles) * weights;
        const int64_t m_outer = windows + (all_resident ? 1 : t.m_tiles) * weights;
        if (m_outer < n_outer) {
          t.m_outer = true;
          t.weights_resident = all_resident;
          t.b_slots = all_resident ? t.k_tiles() * t.n_tiles : wb / t.b_slot_bytes;
        }
        order = fmt::format("; loop order {} (about {} DRAM bytes of windows and weights, against {} the other way)",
                            t.m_outer ? "M tiles outer: each window read once for every n-tile"
                                      : "n-tiles outer: each n-tile's weights read once",
                            std::min(n_outer, m_outer), std::max(n_outer, m_outer));
      }
      t.why = earlier + fmt::format(
          "im2col in the buffer: {}x{} output pixels per tile read from {}{}x{}x{} input window; {}; N tile {} of {} "
          "columns; weights {}",
          t.tile_rows, t.tile_cols, k.buffers.input ? "the resident input: a " : "a ", t.window_rows, t.window_cols, channels,
          k_box_text(k, t, rows), t.n_tile, cols,
          t.weights_resident ? fmt::format("resident ({} k-tile{} reused by {} M tile{})", t.k_tiles(), t.k_tiles() == 1 ? "" : "s", t.m_tiles, t.m_tiles == 1 ? "" : "s")
                             : fmt::format("streamed through {} slot{}", t.b_slots, t.b_slots == 1 ? "" : "s")) + order;
      return;
    }
    if (k.buffers.input) {
      throw Error(op_location(graph, k.name),
                  fmt::format("op '{}' cannot be tiled for '{}': one output pixel does not fit the unified buffer left "
                              "beside its input ({} bytes); use a machine with a larger unified buffer",
                              k.name, arch.name, k.buffers.budget));
    }
    k.im2col = Im2colMode::Dma;
    fallback = "the input window of one output pixel does not fit the unified buffer, so the DMA walks im2col; ";
  }

  plan_weights(choose_k_boxes(k, rows));
  const int64_t kb = t.k_boxes.largest();
  // The M tile: two A slots + two output slots in ub, two accumulator slots in acc. A resident
  // input needs no A slots (its rows are read where they are), a resident output no output slots.
  const int64_t per_row_ub = (k.buffers.input ? 0 : 2 * kb * e) + (k.buffers.output ? 0 : 2 * t.n_tile * e_out);
  const int64_t per_row_acc = 2 * t.n_tile * 4;
  const int64_t ub_budget = k.buffers.budget > 0 ? k.buffers.budget : arch.unified_buffer.bytes;
  int64_t m = std::min({k.M, per_row_ub > 0 ? ub_budget / per_row_ub : k.M, arch.accumulator.bytes / per_row_acc});
  if (m < 1) {
    throw Error(op_location(graph, k.name),
                fmt::format("op '{}' cannot be tiled for '{}': even one output pixel needs {} bytes of unified "
                            "buffer (two {}-element input rows and two {}-channel output rows) and {} bytes of "
                            "accumulators, but the machine has {} and {}; use a machine with larger buffers",
                            k.name, arch.name, per_row_ub, kb, t.n_tile, per_row_acc, ub_budget,
                            arch.accumulator.bytes));
  }
  const int64_t row = k.conv.out_size.back();  // output pixels per output row
  if (k.op == OpKind::Conv && m > row && m < k.M) m = m / row * row;
  t.m_tile = m;
  t.m_tiles = ceil_div(k.M, m);
  charge_gemm(budget, k);
  t.a_slot_bytes = k.buffers.input ? 0 : m * kb * e;
  t.out_slot_bytes = k.buffers.output ? 0 : m * t.n_tile * e_out;
  t.acc_slot_bytes = m * t.n_tile * 4;
  t.chosen = true;
  // With more than one n-tile, the rows of A are read once per n-tile unless all of them stay
  // in the unified buffer: keep them when every slot fits beside the output slots.
  std::string a_text;
  if (t.n_tiles > 1 && !k.buffers.input) {
    const int64_t slots = times(t.m_tiles, t.k_tiles());
    const int64_t bytes = times(slots, t.a_slot_bytes);
    if (checked_add(bytes, 2 * t.out_slot_bytes).value_or(INT64_MAX) <= ub_budget) {
      t.a_resident = true;
      t.a_slots = slots;
      a_text = fmt::format("; A resident ({} bytes in {} slot{}, loaded once for all {} n-tiles)", bytes, slots,
                           slots == 1 ? "" : "s", t.n_tiles);
    } else {
      a_text = fmt::format("; A streamed, once per n-tile ({} bytes of A do not fit the {} bytes beside the output slots)",
                           bytes, ub_budget - 2 * t.out_slot_bytes);
    }
  }
  t.why = earlier + fallback + fmt::format(
      "{}{}; N tile {} of {} columns; M tile {} pixels ({} ub + {} acc bytes double-buffered); weights {}{}",
      k.op == OpKind::Conv ? fmt::format("im2col by {}: ", im2col_mode_name(k.im2col)) : "", k_box_text(k, t, rows),
      t.n_tile, cols, t.m_tile, 2 * t.a_slot_bytes + 2 * t.out_slot_bytes, 2 * t.acc_slot_bytes,
      t.weights_resident ? fmt::format("resident ({} k-tile{} reused by {} M tile{})", t.k_tiles(), t.k_tiles() == 1 ? "" : "s", t.m_tiles, t.m_tiles == 1 ? "" : "s")
                         : fmt::format("streamed through {} slot{}", t.b_slots, t.b_slots == 1 ? "" : "s"),
      a_text);
}

// The slots of an attention kernel for score tiles of q_block x k_block (see AttentionBuffers),
// given whether (materialized) the score matrix stays on chip. `chunk_rows` 0 = as many as fit.
AttentionBuffers attention_buffers(const AttentionKernel& k, const ArchConfig& arch, int64_t q_block, int64_t k_block,
                                   bool on_chip, const Graph& graph) {
  const int64_t e = dtype_size(arch.mxu.operand_type);
  const int64_t e_out = dtype_size(graph.values.at(static_cast<size_t>(k.output)).dtype);
  const int64_t e_mask = k.mask >= 0 ? dtype_size(graph.values.at(static_cast<size_t>(k.mask)).dtype) : 0;
  const bool flash = k.lowering == AttentionLowering::Flash;
  const bool spill = !flash && !on_chip;
  AttentionBuffers b;
  int64_t at = 0;
  auto place = [&](int64_t& base, int64_t& slot, int64_t bytes, int64_t slots) {
    base = at;
    slot = bytes;
    at += bytes * slots;
  };
  int64_t unused = 0;
  place(b.q, b.q_slot, q_block * k.head_dim * e, 2);
  place(b.s, b.s_slot, q_block * k_block * 4, flash ? 1 : spill ? 2 : 0);
  place(b.p, b.p_slot, q_block * k_block * e, flash || spill ? 2 : 0);
  place(b.mask, b.mask_slot, e_mask > 0 ? q_block * k_block * (4 + e_mask) : 0, 2);  // fp32, then as loaded
  place(b.o, unused, q_block * k.value_dim * 4, flash ? 1 : 0);
  place(b.out, b.out_slot, q_block * k.value_dim * e_out, 2);
  place(b.stats, unused, q_block * 4, flash ? 6 : 2);
  if (!flash && on_chip) {
    const int64_t rows = k.batch * k.heads * k.seq_q;
    place(b.scores, unused, rows * k.seq_k * 4, 1);
    place(b.probs, unused, rows * k.seq_k * e, 1);
  }
  if (spill) {
    // Softmax row chunks: fp32 scores and their probabilities.
    const int64_t per_row = k.seq_k * (4 + e);
    const int64_t room = arch.unified_buffer.bytes - at;
    b.chunk_rows = std::min(q_block, room > 0 ? room / (2 * per_row) : 0);
    place(b.chunk, b.chunk_slot, std::max<int64_t>(b.chunk_rows, 1) * per_row, 2);
  }
  b.ub_bytes = at;
  b.acc_s = 0;
  b.acc_s_slot = q_block * k_block * 4;
  b.acc_pv = 2 * b.acc_s_slot;
  b.acc_pv_slot = q_block * k.value_dim * 4;
  b.acc_bytes = b.acc_pv + 2 * b.acc_pv_slot;
  b.kv_slot = k_block * std::max(k.head_dim, k.value_dim) * e;
  b.kv_slots = arch.weight_buffer.bytes / std::max<int64_t>(b.kv_slot, 1);
  return b;
}

bool attention_fits(const AttentionBuffers& b, const ArchConfig& arch, bool spill) {
  return b.ub_bytes <= arch.unified_buffer.bytes && b.acc_bytes <= arch.accumulator.bytes && b.kv_slots >= 2 &&
         (!spill || b.chunk_rows >= 1);
}

// Attention: score tiles of q_block queries x k_block keys. Keys are the N of q . k^T (array
// columns) and the K of p . v (array rows), so k_block <= min(rows, cols); the head dim is cut
// into chunks of at most `rows`, the value dim into chunks of at most `cols`. Square tiles as
// large as the array, halved until the slots fit.
void tile_attention(AttentionKernel& k, const ArchConfig& arch, const Graph& graph, InstructionBudget& budget) {
  require_weight_stationary(arch, graph);
  if (!is_float(arch.mxu.operand_type)) {
    throw Error(op_location(graph, k.name),
                fmt::format("op '{}': attention runs in floating point (its softmax needs it), but the matrix unit of '{}' "
                            "multiplies {}; use a machine with operand_type: bf16 (e.g. --set mxu.operand_type=bf16)",
                            k.name, arch.name, dtype_name(arch.mxu.operand_type)));
  }
  check_types(graph, k.name, k.q, -1, arch);
  AttentionTiling& t = k.tiling;
  const int64_t rows = arch.mxu.rows, cols = arch.mxu.cols;
  t.d_chunk = std::min(k.head_dim, rows);
  t.dv_chunk = std::min(k.value_dim, cols);
  const bool flash = k.lowering == AttentionLowering::Flash;
  int64_t kb = std::min({rows, cols, k.seq_k}), qb = std::min(kb, k.seq_q);
  // Materialized: keep the scores on chip when they fit beside the slots of the largest tile.
  bool on_chip = false;
  if (!flash) on_chip = attention_fits(attention_buffers(k, arch, qb, kb, true, graph), arch, false);
  AttentionBuffers b;
  while (true) {
    b = attention_buffers(k, arch, qb, kb, on_chip, graph);
    if (attention_fits(b, arch, !flash && !on_chip)) break;
    if (qb == 1 && kb == 1) {
      throw Error(op_location(graph, k.name),
                  fmt::format("op '{}' cannot be tiled for '{}': even a 1 x 1 score tile needs {} bytes of unified buffer, "
                              "{} of accumulators and two {}-byte key/value tiles in the weight buffer, but the machine "
                              "has {}, {} and {}; use a machine with larger buffers",
                              k.name, arch.name, b.ub_bytes, b.acc_bytes, b.kv_slot, arch.unified_buffer.bytes,
                              arch.accumulator.bytes, arch.weight_buffer.bytes));
    }
    if (qb >= kb && qb > 1) {
      qb = (qb + 1) / 2;
    } else {
      kb = (kb + 1) / 2;
    }
  }
  t.q_block = qb;
  t.k_block = kb;
  t.q_blocks = ceil_div(k.seq_q, qb);
  t.k_blocks = ceil_div(k.seq_k, kb);
  // Every block of queries sees at least one key tile (checked below), and each computed tile
  // takes a score matmul and a p . v matmul: enough to refuse a huge attention before
  // classifying its tiles. Classifying is one step per tile of a head, so bound that too.
  const int64_t head_blocks = times(times(k.batch, k.heads), t.q_blocks);
  budget.require(k.name, times(head_blocks, 2), times(t.q_blocks, t.k_blocks));
  constexpr int64_t kMaxTilesPerHead = int64_t{1} << 26;
  if (times(t.q_blocks, t.k_blocks) > kMaxTilesPerHead) {
    throw Error(op_location(graph, k.name),
                fmt::format("op '{}': {} x {} score tiles per head is more than the {} the compiler classifies under the "
                            "mask; use shorter sequences or a machine with a larger array",
                            k.name, t.q_blocks, t.k_blocks, kMaxTilesPerHead));
  }
  t.scores_on_chip = on_chip;
  t.empty = t.partial = t.full = 0;
  t.last_block.assign(static_cast<size_t>(t.k_blocks), -1);
  int64_t widest = 0;  // the most key tiles one block of queries sees
  // The partial tiles' masks, distinct by the queries' offset from the keys and the tile shape.
  std::vector<AttentionTiling::MaskPattern> patterns;
  for (int64_t i = 0; i < t.q_blocks; ++i) {
    int64_t visible = 0;
    for (int64_t j = 0; j < t.k_blocks; ++j) {
      const int64_t i0 = i * qb, j0 = j * kb, rows = std::min(qb, k.seq_q - i0), cols = std::min(kb, k.seq_k - j0);
      const TileClass c = k.classify(i0, rows, j0, cols);
      if (c != TileClass::Empty) t.last_block[static_cast<size_t>(j)] = i;
      const AttentionTiling::MaskPattern p{i0 - j0, rows, cols};
      switch (c) {
        case TileClass::Empty: ++t.empty; break;
        case TileClass::Partial:
          ++t.partial, ++visible;
          if (std::find(patterns.begin(), patterns.end(), p) == patterns.end()) patterns.push_back(p);
          break;
        case TileClass::Full: ++t.full, ++visible; break;
      }
    }
    widest = std::max(widest, visible);
    if (visible == 0) {
      throw Error(op_location(graph, k.name),
                  fmt::format("op '{}': queries {} to {} see no key at all (window {} over {} keys), so their softmax is "
                              "undefined; the compiler lowers attention where every block of queries sees some key — "
                              "shorten the queries or widen the window",
                              k.name, i * qb, std::min(k.seq_q, (i + 1) * qb) - 1, k.window, k.seq_k));
    }
  }
  // Partial tiles' masks: built once each when there are few distinct ones and they fit.
  t.mask_patterns.clear();
  constexpr size_t kMaxMaskPatterns = 4;
  const int64_t pattern_bytes = qb * kb * 4;
  if (!patterns.empty() && patterns.size() <= kMaxMaskPatterns &&
      b.ub_bytes + static_cast<int64_t>(patterns.size()) * pattern_bytes <= arch.unified_buffer.bytes) {
    t.mask_patterns = patterns;
    t.patterns_base = b.ub_bytes;
    b.ub_bytes += static_cast<int64_t>(patterns.size()) * pattern_bytes;
  }
  t.buffers = b;
  // Key and value tiles: each block of queries sees one run of key tiles, and the runs move
  // forward, so a ring holding the widest run keeps every tile from its first use to its last
  // (two more slots let the next tiles load early). Otherwise stream them through two slots.
  const int64_t ring = b.kv_slots / 2;
  t.kv_resident = ring >= widest;
  t.kv_ring = t.kv_resident ? std::min(ring, widest + 2) : std::min<int64_t>(ring, 2);
  t.chosen = true;
  const int64_t computed = times(times(k.batch, k.heads), t.partial + t.full);
  budget.charge(k.name, times(computed, ceil_div(k.head_dim, t.d_chunk) + ceil_div(k.value_dim, t.dv_chunk)), computed);
  const int64_t tiles = t.tiles();
  const int64_t matrix = k.batch * k.heads * k.seq_q * k.seq_k, e = dtype_size(arch.mxu.operand_type);
  t.why = fmt::format(
      "{}: score tiles of {} queries x {} keys ({} of {} array columns); q . k^T in {} head-dim chunk{} of {} rows, "
      "p . v in {} value-dim chunk{} of {} columns; {} of {} tiles computed per head ({:.1f}%){}{}; key/value tiles "
      "{}",
      flash ? "flash (running max and sum on the VPU, the score matrix never exists)"
            : on_chip ? fmt::format("materialized, scores and probabilities kept in the unified buffer ({} bytes)", matrix * (4 + e))
                      : fmt::format("materialized, scores spilled to DRAM ({} bytes of fp32 scores and {} of probabilities do "
                                    "not fit the unified buffer beside the tile slots)", matrix * 4, matrix * e),
      qb, kb, kb, cols, ceil_div(k.head_dim, t.d_chunk), ceil_div(k.head_dim, t.d_chunk) == 1 ? "" : "s", t.d_chunk,
      ceil_div(k.value_dim, t.dv_chunk), ceil_div(k.value_dim, t.dv_chunk) == 1 ? "" : "s", t.dv_chunk,
      t.partial + t.full, tiles, 100.0 * static_cast<double>(t.partial + t.full) / static_cast<double>(tiles),
      t.empty > 0 ? fmt::format(", {} empty skipped", t.empty) : "",
      t.partial == 0 ? ""
      : t.mask_patterns.empty()
          ? "; partial tiles masked row by row"
          : t.mask_patterns.size() == 1
              ? "; partial tiles masked by adding a mask tile built once"
              : fmt::format("; partial tiles masked by adding one of {} mask tiles built once", t.mask_patterns.size()),
      t.kv_resident ? fmt::format("loaded once per key/value head, kept in two rings of {} weight-buffer slots while queries see them",
                                  t.kv_ring)
                    : fmt::format("loaded for every use through two rings of {} slot{} (a block of queries sees up to {} "
                                  "tiles, more than the weight buffer holds)", t.kv_ring, t.kv_ring == 1 ? "" : "s", widest));
}

}  // namespace

void tile_kernels(KernelModule& module, const ArchConfig& arch, int64_t max_program_instructions) {
  InstructionBudget budget(module.graph, arch, max_program_instructions);
  for (auto& kernel : module.kernels) {
    if (auto* gemm = std::get_if<GemmKernel>(&kernel)) tile_gemm(*gemm, arch, module.graph, budget);
    if (auto* attention = std::get_if<AttentionKernel>(&kernel)) tile_attention(*attention, arch, module.graph, budget);
    // Vector and VPU-depthwise kernels are cut into chunks by the emitter, from the unified
    // buffer each chunk can use.
    if (auto* dw = std::get_if<DepthwiseKernel>(&kernel)) {
      check_types(module.graph, dw->name, dw->input, dw->bias, arch);
      charge_output_chunks(budget, module.graph, dw->name, dw->output, arch);
    }
    if (auto* v = std::get_if<VectorKernel>(&kernel)) charge_output_chunks(budget, module.graph, v->name, v->output, arch);
  }
}

}  // namespace tpusim

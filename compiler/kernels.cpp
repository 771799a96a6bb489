#include "compiler/kernels.h"

#include <algorithm>
#include <fmt/format.h>
#include <fmt/ranges.h>

namespace tpusim {

std::string_view im2col_mode_name(Im2colMode m) {
  switch (m) {
    case Im2colMode::Buffer: return "buffer";
    case Im2colMode::Dma: return "dma";
    case Im2colMode::Materialize: return "materialize";
  }
  return "?";
}

int64_t KBoxes::begin(int64_t b) const {
  // b * K / count without overflow: K and count are int64 sizes.
  return static_cast<int64_t>(static_cast<__int128>(b) * K / count);
}

int64_t KBoxes::box_of(int64_t k) const {
  int64_t b = static_cast<int64_t>(static_cast<__int128>(k) * count / K);  // begin(b) <= k, within one
  while (b + 1 < count && begin(b + 1) <= k) ++b;
  while (b > 0 && begin(b) > k) --b;
  return b;
}

std::string k_box_sizes(const KBoxes& boxes) {
  return boxes.smallest() == boxes.largest() ? fmt::format("{}", boxes.largest())
                                             : fmt::format("{}-{}", boxes.smallest(), boxes.largest());
}

std::vector<KPiece> k_pieces(int64_t k0, int64_t k1, int64_t kernel_h, int64_t kernel_w, int64_t channels) {
  std::vector<KPiece> pieces;
  const int64_t row = kernel_w * channels;
  for (int64_t k = k0; k < k1;) {
    const int64_t left = k1 - k;
    KPiece p;
    p.kh0 = k / row;
    p.kw0 = k % row / channels;
    p.c0 = k % channels;
    p.offset = k - k0;
    if (p.c0 != 0 || left < channels) {  // the rest of one tap's channels
      p.c = std::min(channels - p.c0, left);
    } else if (p.kw0 != 0 || left < row) {  // whole taps of one kernel row
      p.c = channels;
      p.kw = std::min(kernel_w - p.kw0, left / channels);
    } else {  // whole kernel rows
      p.c = channels;
      p.kw = kernel_w;
      p.kh = std::min(kernel_h - p.kh0, left / row);
    }
    pieces.push_back(p);
    k += p.size();
  }
  return pieces;
}

std::string_view attention_lowering_name(AttentionLowering l) {
  return l == AttentionLowering::Materialized ? "materialized" : "flash";
}

TileClass AttentionKernel::classify(int64_t i0, int64_t rows, int64_t j0, int64_t cols) const {
  if (!causal && window <= 0) return TileClass::Full;
  // Along a row the visible keys are one run, so a tile is full when every row's run covers it,
  // and empty when no row's run meets it.
  const int64_t j1 = j0 + cols - 1;
  bool full = true, any = false;
  for (int64_t i = i0; i < i0 + rows; ++i) {
    const auto [lo, hi] = visible_keys(i, j0, j1);
    if (lo <= hi) any = true;
    if (lo != j0 || hi != j1) full = false;
  }
  return !any ? TileClass::Empty : full ? TileClass::Full : TileClass::Partial;
}

std::string AttentionKernel::heads_text() const {
  std::string text = fmt::format("{} head{}", heads, heads == 1 ? "" : "s");
  if (kv_heads != heads) text += fmt::format(" sharing {} key/value head{}", kv_heads, kv_heads == 1 ? "" : "s");
  return text;
}

std::vector<int> AttentionKernel::inputs() const {
  std::vector<int> in = {q, k, v};
  if (mask >= 0) in.push_back(mask);
  return in;
}

SourceLocation op_location(const Graph& graph, const std::string& name) {
  for (const auto& op : graph.ops) {
    if (op.name == name && op.location.line > 0) return op.location;
  }
  return {graph.file, 0, 0, ""};
}

std::string kernel_name(const Kernel& k) {
  return std::visit([](const auto& x) { return x.name; }, k);
}

namespace {

std::string epilogue_text(const Epilogue& e) {
  std::string out;
  if (e.requantize) {
    out = e.scale.multiplier == 1 && e.scale.shift == 0 ? "convert"
                                                        : fmt::format("requantize(x{} >> {})", e.scale.multiplier, e.scale.shift);
  }
  if (e.activation == Epilogue::Activation::Relu) out += out.empty() ? "relu" : " + relu";
  if (e.activation == Epilogue::Activation::Clip) out += fmt::format("{}clip({}, {})", out.empty() ? "" : " + ", e.clip_low, e.clip_high);
  if (!e.fused_op.empty()) out += fmt::format(" [fused {}]", e.fused_op);
  return out.empty() ? "none" : out;
}

std::string_view vector_kind_name(VectorKernel::Kind k) {
  switch (k) {
    case VectorKernel::Kind::Add: return "add";
    case VectorKernel::Kind::Relu: return "relu";
    case VectorKernel::Kind::Clip: return "clip";
    case VectorKernel::Kind::MaxPool: return "maxpool";
    case VectorKernel::Kind::AvgPool: return "avgpool";
    case VectorKernel::Kind::GlobalAvgPool: return "global_avgpool";
    case VectorKernel::Kind::Copy: return "copy";
    case VectorKernel::Kind::Transpose: return "transpose";
    case VectorKernel::Kind::Concat: return "concat";
    case VectorKernel::Kind::Mul: return "mul";
    case VectorKernel::Kind::Gelu: return "gelu";
    case VectorKernel::Kind::Softmax: return "softmax";
    case VectorKernel::Kind::LayerNorm: return "layernorm";
  }
  return "?";
}

}  // namespace

std::string print_kernels(const KernelModule& module, bool with_tiling) {
  const Graph& g = module.graph;
  auto name = [&](int v) { return v < 0 ? std::string("-") : g.values.at(static_cast<size_t>(v)).name; };
  std::string out = fmt::format("kernels {}\n", g.name);
  for (const auto& kernel : module.kernels) {
    if (const auto* k = std::get_if<GemmKernel>(&kernel)) {
      out += fmt::format("gemm {} ({}): M={} K={} N={}{} A={} B={} bias={} -> {} epilogue={}{}\n", k->name,
                         op_info(k->op).name, k->M, k->K, k->N, k->groups > 1 ? fmt::format(" groups={}", k->groups) : "",
                         name(k->input), name(k->weight), name(k->bias), name(k->output), epilogue_text(k->epilogue),
                         k->op == OpKind::Conv ? fmt::format(" im2col={}", im2col_mode_name(k->im2col)) : "");
      if (!k->buffers.note.empty()) out += fmt::format("  buffers: {}\n", k->buffers.note);
      if (with_tiling && k->tiling.chosen) {
        const GemmTiling& t = k->tiling;
        out += fmt::format("  tiles: m {} x {}, n {} x {}, k {} of {}; weights {}\n", t.m_tiles, t.m_tile, t.n_tiles,
                           t.n_tile, counted(t.k_tiles(), "box", "boxes"), k_box_sizes(t.k_boxes),
                           t.weights_resident ? "resident" : "streamed");
        out += fmt::format("  slots: ub {}x{} (A) + 2x{} (out) bytes, wb {}x{} bytes, acc 2x{} bytes\n", t.a_slots, t.a_slot_bytes,
                           t.out_slot_bytes, t.b_slots, t.b_slot_bytes, t.acc_slot_bytes);
        out += fmt::format("  why: {}\n", t.why);
      } else if (!k->tiling.why.empty()) {
        out += fmt::format("  why: {}\n", k->tiling.why);
      }
    } else if (const auto* d = std::get_if<DepthwiseKernel>(&kernel)) {
      out += fmt::format("depthwise {} (conv on the VPU): {} channels, kernel {} -> {} epilogue={}\n", d->name, d->conv.in_channels,
                         fmt::join(d->conv.kernel, "x"), name(d->output), epilogue_text(d->epilogue));
      out += fmt::format("  why: {}\n", d->why);
    } else if (const auto* v = std::get_if<VectorKernel>(&kernel)) {
      std::vector<std::string> inputs;
      for (int i : v->inputs) inputs.push_back(name(i));
      out += fmt::format("vector {} ({}): {} -> {} epilogue={}\n", v->name, vector_kind_name(v->kind), fmt::join(inputs, ", "),
                         name(v->output), epilogue_text(v->epilogue));
    } else if (const auto* a = std::get_if<AttentionKernel>(&kernel)) {
      std::vector<std::string> inputs;
      for (int i : a->inputs()) inputs.push_back(name(i));
      out += fmt::format("attention {} ({}): {} -> {}: batch {}, {}, seq {}x{}, head dim {}/{}, "
                         "scale {}{}{}\n", a->name, attention_lowering_name(a->lowering), fmt::join(inputs, ", "),
                         name(a->output), a->batch, a->heads_text(), a->seq_q, a->seq_k, a->head_dim, a->value_dim,
                         graph_number_text(a->scale), a->causal ? ", causal" : "",
                         a->window > 0 ? fmt::format(", window {}", a->window) : "");
      if (with_tiling && a->tiling.chosen) {
        const AttentionTiling& t = a->tiling;
        out += fmt::format("  tiles: {}x{} score tiles of {} queries x {} keys per head: {} empty (skipped), {} partial, "
                           "{} full\n", t.q_blocks, t.k_blocks, t.q_block, t.k_block, t.empty, t.partial, t.full);
        out += fmt::format("  why: {}\n", t.why);
      }
    }
  }
  return out;
}

}  // namespace tpusim

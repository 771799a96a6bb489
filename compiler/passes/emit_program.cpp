// emit_program: kernels -> a program of DMA, MXU and VPU instructions with tokens.
//
// Every kernel streams tiles through ring buffers of two slots in the on-chip buffers. For a
// GEMM tile (m, n) the queues see:
//   DMA:  [bias -> acc slot]  A box -> ub A slot, B box -> wb slot  (per k-tile)   store(prev)
//   MXU:  load_stationary, matmul (accumulate)                      (per k-tile)
//   VPU:  requantize / convert acc slot -> ub out slot, activation
// Tokens: *_ready from producer to consumer, *_free back (init = slots), so the DMA fetches
// the next k-tile while the MXU computes this one. A tile's store is emitted after the next
// tile's loads, so the in-order DMA queue does not block prefetching on the VPU.
//
// Tensors between kernels live in DRAM, except those the allocation pass keeps in the unified
// buffer (a convolution's output for the next convolution): the producer's epilogue writes them
// in place and its last VPU instruction signals `resident_ready` to the reader's first matmul.
// Kernels are ordered one after another through the DMA queue: a kernel's first DMA work comes
// after the previous kernel's last store, or, when the previous kernel kept its output on chip
// (and so ends without a store), waits on that kernel's `done` token.
#include <algorithm>
#include <map>
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "compiler/passes/passes.h"

namespace tpusim {
namespace {


std::string tensor_name_for(const std::string& value_name) {
  std::string out;
  for (char c : value_name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    out += ok ? c : '_';
  }
  if (out.empty() || (out[0] >= '0' && out[0] <= '9')) out = "t_" + out;
  return out;
}

BufferRef buf(Buffer b, int64_t address, DType type = DType::Int8) {
  BufferRef r;
  r.present = true;
  r.buffer = b;
  r.address = Affine(address);
  r.type = type;
  return r;
}

class Emitter {
 public:
  Emitter(const KernelModule& module, const ArchConfig& arch, int64_t max_instructions)
      : m_(module), g_(module.graph), arch_(arch), e_(dtype_size(arch.mxu.operand_type)),
        max_instructions_(max_instructions) {}

  const std::vector<int>& tensor_of_value() const { return tensor_of_value_; }

  Program run() {
    declare_tensors();
    for (const auto& kernel : m_.kernels) {
      std::visit([this](const auto& k) { emit(k); }, kernel);
    }
    program_.update_unit_masks();
    return std::move(program_);
  }

 private:
  // ---------------------------------------------------------------- declarations
  void declare_tensors() {
    // Which values the program touches: graph inputs, weights read by kernels, kernel outputs.
    std::vector<bool> used(g_.values.size(), false);
    std::vector<int> on_chip;
    for (const auto& kernel : m_.kernels) {
      std::visit(
          [&](const auto& k) {
            using K = std::decay_t<decltype(k)>;
            if constexpr (std::is_same_v<K, VectorKernel>) {
              for (int v : k.inputs) used[static_cast<size_t>(v)] = true;
            } else if constexpr (std::is_same_v<K, AttentionKernel>) {
              for (int v : k.inputs()) used[static_cast<size_t>(v)] = true;
            } else {
              used[static_cast<size_t>(k.input)] = true;
              used[static_cast<size_t>(k.weight)] = true;
              if (k.bias >= 0) used[static_cast<size_t>(k.bias)] = true;
            }
            used[static_cast<size_t>(k.output)] = true;
            if constexpr (std::is_same_v<K, GemmKernel>) {
              if (k.buffers.output) on_chip.push_back(k.output);  // never in DRAM
            }
          },
          kernel);
    }
    for (int v : on_chip) used[static_cast<size_t>(v)] = false;
    tensor_of_value_.assign(g_.values.size(), -1);
    std::vector<std::string> taken;
    for (size_t v = 0; v < g_.values.size(); ++v) {
      if (!used[v]) continue;
      const Value& value = g_.values[v];
      TensorDecl decl;
      decl.name = tensor_name_for(value.name);
      while (std::find(taken.begin(), taken.end(), decl.name) != taken.end()) decl.name += "_";
      taken.push_back(decl.name);
      decl.dtype = value.dtype;
      decl.shape = value.shape.empty() ? std::vector<int64_t>{1} : value.shape;
      bool output = std::find(g_.outputs.begin(), g_.outputs.end(), static_cast<int>(v)) != g_.outputs.end();
      decl.kind = value.kind != ValueKind::Activation ? TensorKind::Input
                  : output                            ? TensorKind::Output
                                                      : TensorKind::Scratch;
      tensor_of_value_[v] = static_cast<int>(program_.tensors.size());
      Node node;
      node.kind = Node::Kind::TensorDecl;
      node.declaration = static_cast<int>(program_.tensors.size());
      program_.tensors.push_back(decl);
      program_.body.push_back(node);
    }
  }

  int tensor(int value) const {
    int t = tensor_of_value_.at(static_cast<size_t>(value));
    TPUSIM_CHECK(t >= 0, "value without a DRAM tensor");
    return t;
  }

  int token(const std::string& name, Unit producer, Unit consumer, int64_t initial = 0) {
    TokenDecl decl;
    decl.name = fmt::format("k{}_{}", kernel_index_, name);
    decl.producer = producer;
    decl.consumer = consumer;
    decl.initial = initial;
    Node node;
    node.kind = Node::Kind::TokenDecl;
    node.declaration = static_cast<int>(program_.tokens.size());
    program_.tokens.push_back(decl);
    // Token declarations go before the first instruction that uses them: at the top level,
    // in front of this kernel's code.
    program_.body.insert(program_.body.begin() + static_cast<long>(declarations_end()), node);
    return node.declaration;
  }
  size_t declarations_end() const {
    size_t i = 0;
    while (i < program_.body.size() && (program_.body[i].kind == Node::Kind::TensorDecl ||
                                        program_.body[i].kind == Node::Kind::TokenDecl)) {
      ++i;
    }
    return i;
  }

  // Counts one more instruction of the program text (loop bodies included). The tiling's
  // floor refuses most programs too large for the machine before any is built; this is the
  // exact count, for those the floor lets through.
  void count_instruction() {
    if (++instructions_ > max_instructions_) {
      throw Error(op_location(g_, label_),
                  fmt::format("the program for '{}' on '{}' needs more than {} instructions (op '{}' alone is split into "
                              "very many tiles; the compiler does not fold tile loops into repeats yet); compile for a "
                              "machine with a larger array or buffers", g_.name, arch_.name, max_instructions_, label_));
    }
  }

  Instruction& add(Instruction in) {
    count_instruction();
    in.label = label_;
    // A kernel that left its output on chip ends without a DMA store; the next DMA work (which
    // may reuse its buffer space) waits until it is done.
    if (pending_done_token_ >= 0 && unit_of(in.opcode) == Unit::Dma) {
      in.waits.push_back(pending_done_token_);
      pending_done_token_ = -1;
    }
    Node node;
    node.kind = Node::Kind::Instruction;
    node.instruction = std::move(in);
    program_.body.push_back(std::move(node));
    return program_.body.back().instruction;
  }
  void comment(const std::string& text) {
    Node node;
    node.kind = Node::Kind::Comment;
    node.text = " " + text;
    program_.body.push_back(std::move(node));
  }

  // ---------------------------------------------------------------- instruction builders
  Instruction dma(Opcode op, BufferRef b, int t, std::vector<int64_t> coords, std::vector<int64_t> extent,
                  std::vector<std::vector<int64_t>> steps = {}, std::vector<int64_t> strides = {}) {
    Instruction in;
    in.opcode = op;
    in.buffer = b;
    in.tensor.tensor = t;
    for (int64_t c : coords) in.tensor.coords.emplace_back(c);
    in.extent = std::move(extent);
    in.tensor_step = std::move(steps);
    in.buffer_stride = std::move(strides);
    return in;
  }
  Instruction vpu(Opcode op, BufferRef dst, BufferRef src, int64_t rows, int64_t cols) {
    Instruction in;
    in.opcode = op;
    in.dst = dst;
    in.src = src;
    in.rows = rows;
    in.cols = cols;
    return in;
  }

  // Zeros `rows` x `row_bytes` bytes of ub from `address`: a DMA load whose every coordinate is
  // outside `value`'s tensor (of the operand type) reads nothing from DRAM and writes its
  // padding, 0.
  Instruction zero_fill(int value, int64_t address, int64_t rows, int64_t row_bytes) {
    const size_t rank = program_.tensors[static_cast<size_t>(tensor(value))].shape.size();
    const std::vector<int64_t> outside(rank, -1), still(rank, 0);
    return dma(Opcode::DmaLoad, buf(Buffer::Unified, address), tensor(value), outside, {rows, row_bytes / e_}, {still, still},
               {row_bytes, e_});
  }

  // Ring-buffer bookkeeping: slot i of n.
  struct Ring {
    int64_t base = 0, bytes = 0, slots = 2, next = 0;
    int64_t take() { return base + (next++ % slots) * bytes; }
  };

  // Applies an epilogue's activation in place on an ub region of `type`.
  void activation(const Epilogue& e, int64_t address, DType type, int64_t rows, int64_t cols, std::vector<int> signals) {
    if (e.activation == Epilogue::Activation::None) return;
    if (e.activation == Epilogue::Activation::Relu) {
      add(vpu(Opcode::VpuRelu, buf(Buffer::Unified, address, type), buf(Buffer::Unified, address, type), rows, cols)).signals =
          std::move(signals);
      return;
    }
    Instruction lo = vpu(Opcode::VpuMax, buf(Buffer::Unified, address, type), buf(Buffer::Unified, address, type), rows, cols);
    lo.imm = e.clip_low;
    add(lo);
    Instruction hi = vpu(Opcode::VpuMin, buf(Buffer::Unified, address, type), buf(Buffer::Unified, address, type), rows, cols);
    hi.imm = e.clip_high;
    add(hi).signals = std::move(signals);
  }

  // ---------------------------------------------------------------- GEMM
  // Output pixels [m0, m0 + count) of a GEMM as runs along one output row.
  struct Segment {
    int64_t batch, row, col, length, offset;  // offset: pixel index within the tile
  };
  std::vector<Segment> segments(const GemmKernel& k, int64_t m0, int64_t count) const {
    std::vector<Segment> out;
    const int64_t width = k.conv.out_size.back();
    const int64_t height = k.conv.out_size.size() == 2 ? k.conv.out_size[0] : 1;
    int64_t m = m0, end = m0 + count;
    while (m < end) {
      int64_t col = m % width, row = (m / width) % height, batch = m / (width * height);
      int64_t length = std::min(width - col, end - m);
      out.push_back({batch, row, col, length, m - m0});
      m += length;
    }
    return out;
  }

  // One M tile of a GEMM: output pixels [m0, m0 + count) in (batch, row, col) order; in
  // buffer-mode im2col also the rectangle they form (rows x cols starting at row, col).
  struct MTile {
    int64_t m0 = 0, count = 0;
    int64_t batch = 0, row = 0, rows = 1, col = 0, cols = 0;
  };
  std::vector<MTile> m_tiles(const GemmKernel& k) const {
    const GemmTiling& t = k.tiling;
    std::vector<MTile> tiles;
    if (k.op == OpKind::Conv && k.im2col == Im2colMode::Buffer) {
      const int64_t out_h = k.conv.out_size.size() == 2 ? k.conv.out_size[0] : 1, out_w = k.conv.out_size.back();
      for (int64_t b = 0; b < k.conv.batch; ++b) {
        for (int64_t r = 0; r < out_h; r += t.tile_rows) {
          for (int64_t c = 0; c < out_w; c += t.tile_cols) {
            MTile tile;
            tile.batch = b;
            tile.row = r;
            tile.rows = std::min(t.tile_rows, out_h - r);
            tile.col = c;
            tile.cols = std::min(t.tile_cols, out_w - c);
            tile.m0 = (b * out_h + r) * out_w + c;
            tile.count = tile.rows * tile.cols;
            tiles.push_back(tile);
          }
        }
      }
      return tiles;
    }
    for (int64_t m0 = 0; m0 < k.M; m0 += t.m_tile) tiles.push_back({m0, std::min(t.m_tile, k.M - m0)});
    return tiles;
  }

  // `rows` matmuls, one per output row of a buffer-mode tile, each `row_src` bytes further in
  // the window and `row_dst` further in the accumulators. The first carries `first.waits`,
  // the last `last_signals`; the rows between run as one `repeat`.
  void matmul_rows(Instruction first, int64_t rows, int64_t row_src, int64_t row_dst, std::vector<int> last_signals) {
    if (rows == 1) {
      first.signals.insert(first.signals.end(), last_signals.begin(), last_signals.end());
      add(first);
      return;
    }
    first.label = label_;
    Instruction row = first;
    row.waits.clear();
    row.signals.clear();
    add(first);
    if (rows > 2) {
      Node loop;
      loop.kind = Node::Kind::Repeat;
      loop.loop_variable.push_back('r');  // (assigning a literal trips a GCC 12 -Wrestrict false positive)
      loop.loop_count = rows - 2;
      Instruction body = row;
      body.src.address = Affine(first.src.address.constant + row_src);
      body.src.address.terms = {{0, row_src}};
      body.dst.address = Affine(first.dst.address.constant + row_dst);
      body.dst.address.terms = {{0, row_dst}};
      Node node;
      node.kind = Node::Kind::Instruction;
      node.instruction = body;
      count_instruction();
      loop.body.push_back(node);
      program_.body.push_back(std::move(loop));
    }
    Instruction last = row;
    last.src.address = Affine(first.src.address.constant + (rows - 1) * row_src);
    last.dst.address = Affine(first.dst.address.constant + (rows - 1) * row_dst);
    last.signals = std::move(last_signals);
    add(last);
  }

  void emit(const GemmKernel& k) {
    const GemmTiling& t = k.tiling;
    TPUSIM_CHECK(t.chosen, "GEMM kernel emitted before tiling");
    label_ = k.name;
    ++kernel_index_;
    const Value& out_value = g_.values[static_cast<size_t>(k.output)];
    const DType out_type = out_value.dtype;
    const int64_t e_out = dtype_size(out_type);
    const bool conv2d = k.op == OpKind::Conv && k.conv.kernel.size() == 2;
    const bool conv1d = k.op == OpKind::Conv && k.conv.kernel.size() == 1;
    const bool window_mode = k.op == OpKind::Conv && k.im2col == Im2colMode::Buffer;
    const int64_t channels = k.conv.in_channels / k.groups;
    const int64_t kh_total = conv2d ? k.conv.kernel[0] : 1, kw_total = k.op == OpKind::Conv ? k.conv.kernel.back() : 1;
    const int64_t sh = conv2d ? k.conv.strides[0] : 1, dh = conv2d ? k.conv.dilations[0] : 1;
    const int64_t sw = k.conv.strides.back(), dw = k.conv.dilations.back();
    comment(fmt::format("{}: GEMM M={} K={} N={}{} — {}", k.name, k.M, k.K, k.N,
                        k.groups > 1 ? fmt::format(" x {} groups", k.groups) : "", t.why));

    // Buffer plan: ub = [A slots (windows or im2col rows)][out slots], wb = B slots, acc = 2 slots.
    Ring a{0, t.a_slot_bytes, t.a_slots}, out{t.a_slots * t.a_slot_bytes, t.out_slot_bytes, 2}, acc{0, t.acc_slot_bytes, 2};
    Ring b{0, t.b_slot_bytes, t.b_slots};

    const std::optional<ResidentTensor>& resident_in = k.buffers.input;
    const std::optional<ResidentTensor>& resident_out = k.buffers.output;
    int a_ready = resident_in ? -1 : token("a_ready", Unit::Dma, Unit::Mxu);
    int a_free = resident_in ? -1 : token("a_free", Unit::Mxu, Unit::Dma, t.a_slots);
    int b_ready = token("b_ready", Unit::Dma, Unit::Mxu);
    int b_free = token("b_free", Unit::Mxu, Unit::Dma, t.weights_resident ? 1 : t.b_slots);
    const bool bias = k.bias >= 0;
    int acc_ready = token("acc_ready", Unit::Mxu, Unit::Vpu);
    int acc_free = token("acc_free", Unit::Vpu, bias ? Unit::Dma : Unit::Mxu, 2);
    int bias_ready = bias ? token("bias_ready", Unit::Dma, Unit::Mxu) : -1;
    int out_ready = resident_out ? -1 : token("out_ready", Unit::Vpu, Unit::Dma);
    int out_free = resident_out ? -1 : token("out_free", Unit::Dma, Unit::Vpu, 2);
    // A resident input was written by the previous kernel: its last epilogue op signals this.
    const int input_written = resident_in ? pending_resident_token_ : -1;
    if (resident_in) TPUSIM_CHECK(input_written >= 0, "resident input without its producer's token");
    pending_resident_token_ = -1;
    // A resident output: zero its region first (the padding its reader needs), then hand it on.
    int zeroed = -1, written = -1, finished = -1;
    // Without padding in its reader's layout every byte is written by the epilogue: no zeros.
    const bool padded = resident_out && resident_out->padded;
    if (resident_out) {
      zeroed = padded ? token("zeroed", Unit::Dma, Unit::Vpu) : -1;
      written = token("resident_ready", Unit::Vpu, Unit::Mxu);
      finished = token("done", Unit::Vpu, Unit::Dma);
    }
    if (padded) {
      const ResidentTensor& r = *resident_out;
      const int64_t row_bytes = r.width * r.channels * e_;
      Instruction clear = zero_fill(k.weight, r.base, r.bytes / row_bytes, row_bytes);
      clear.signals = {zeroed};
      add(clear);
    }

    // Materialized im2col: write the whole im2col matrix of each group to DRAM first.
    int im2col_tensor = -1;
    if (k.im2col == Im2colMode::Materialize && k.op == OpKind::Conv) im2col_tensor = materialize_im2col(k, t);

    std::vector<Instruction> pending_store;
    auto flush_store = [&]() {
      for (auto& in : pending_store) add(std::move(in));
      pending_store.clear();
    };

    // K boxes: runs of consecutive (kh, kw, c) indices, each moved as its rectangular pieces.
    struct Box {
      int64_t k0, kb;
      std::vector<KPiece> pieces;
    };
    TPUSIM_CHECK(kh_total * kw_total * channels == k.K, "a GEMM's K is not its taps times its channels");
    std::vector<Box> boxes;
    for (int64_t b = 0; b < t.k_boxes.count; ++b) {
      const int64_t k0 = t.k_boxes.begin(b), k1 = t.k_boxes.begin(b + 1);
      boxes.push_back({k0, k1 - k0, k_pieces(k0, k1, kh_total, kw_total, channels)});
    }
    const std::vector<MTile> tiles = m_tiles(k);
    const int64_t window_pitch = t.window_cols * channels * e_;  // bytes per window row (buffer mode)

    const int x_tensor = resident_in ? -1 : tensor(k.input), w_tensor = tensor(k.weight);
    const int y_tensor = resident_out ? -1 : tensor(k.output);
    // The order the (n-tile, M tile) pairs are visited in: n-tiles outer, so each n-tile's
    // weights can stay for all its M tiles, or (t.m_outer) M tiles outer, so each input window
    // is loaded once for every n-tile.
    struct Visit {
      int64_t n0;
      size_t ti;
    };
    std::vector<Visit> order;
    if (t.m_outer) {
      for (size_t ti = 0; ti < tiles.size(); ++ti) {
        for (int64_t n0 = 0; n0 < k.N; n0 += t.n_tile) order.push_back({n0, ti});
      }
    } else {
      for (int64_t n0 = 0; n0 < k.N; n0 += t.n_tile) {
        for (size_t ti = 0; ti < tiles.size(); ++ti) order.push_back({n0, ti});
      }
    }
    const size_t n_count = static_cast<size_t>((k.N + t.n_tile - 1) / t.n_tile);
    int64_t window = -1;
    for (int64_t group = 0; group < k.groups; ++group) {
      // Where each resident weight tile [n-tile][k box] was put.
      std::vector<std::vector<int64_t>> resident_slot(n_count, std::vector<int64_t>(boxes.size(), -1));
      for (size_t vi = 0; vi < order.size(); ++vi) {
        const int64_t n0 = order[vi].n0;
        const size_t ti = order[vi].ti;
        const size_t n_index = static_cast<size_t>(n0 / t.n_tile);
        {
          const int64_t nt = std::min(t.n_tile, k.N - n0);
          const int64_t oc0 = group * k.N + n0;
          const MTile& tile = tiles[ti];
          const int64_t m0 = tile.m0, mt = tile.count;
          // First and last use of this n-tile's weights, and of this M tile's window.
          const bool last_m = ti + 1 == tiles.size();
          const bool first_n = n0 == 0, last_n = n0 + t.n_tile >= k.N;
          const bool first_visit = vi == 0, last_visit = vi + 1 == order.size();
          const bool window_first_use = !t.m_outer || first_n, window_last_use = !t.m_outer || last_n;
          const int64_t acc_slot = acc.take();
          if (bias) {
            Instruction in = dma(Opcode::DmaLoad, buf(Buffer::Accumulator, acc_slot), tensor(k.bias), {oc0}, {mt, nt}, {{0}, {1}},
                                 {nt * 4, 4});
            in.waits = {acc_free};
            in.signals = {bias_ready};
            add(in);
          }
          // Buffer mode: the tile's input window, once for every K box (and, M tiles outer,
          // once for every n-tile).
          int64_t pitch = window_pitch;
          if (window_mode && resident_in) {
            // The window is part of the resident tensor (padded, channels innermost).
            const ResidentTensor& r = *resident_in;
            pitch = r.width * r.channels * e_;
            window = r.base + ((tile.batch * r.height + tile.row * sh) * r.width + tile.col * sw) * r.channels * e_;
          } else if (window_mode && window_first_use) {
            window = a.take();
            const int64_t c = group * channels;
            const int64_t w0 = tile.col * sw - k.conv.pads_begin.back();
            const int64_t wc = (tile.cols - 1) * sw + (kw_total - 1) * dw + 1;
            Instruction in;
            if (conv2d) {
              const int64_t h0 = tile.row * sh - k.conv.pads_begin[0];
              const int64_t hr = (tile.rows - 1) * sh + (kh_total - 1) * dh + 1;
              in = dma(Opcode::DmaLoad, buf(Buffer::Unified, window), x_tensor, {tile.batch, c, h0, w0}, {hr, wc, channels},
                       {{0, 0, 1, 0}, {0, 0, 0, 1}, {0, 1, 0, 0}}, {window_pitch, channels * e_, e_});
            } else {
              in = dma(Opcode::DmaLoad, buf(Buffer::Unified, window), x_tensor, {tile.batch, c, w0}, {wc, channels},
                       {{0, 0, 1}, {0, 1, 0}}, {channels * e_, e_});
            }
            in.waits = {a_free};
            in.signals = {a_ready};
            add(in);
          }
          for (size_t j = 0; j < boxes.size(); ++j) {
            const Box& box = boxes[j];
            const int64_t kb = box.kb;
            const bool last_k = j + 1 == boxes.size();
            // A (DMA modes): the im2col rows of this tile for this K box, piece by piece (a
            // piece is rectangular in (kh, kw, c); its elements go to their place in each row).
            // Resident A: slot (M tile, K box), loaded by the first n-tile, freed by the last.
            int64_t a_slot = -1;
            const bool load_a = !window_mode && !resident_in && (!t.a_resident || first_n);
            if (t.a_resident) a_slot = static_cast<int64_t>(ti * boxes.size() + j) * t.a_slot_bytes;
            if (load_a) {
              if (!t.a_resident) a_slot = a.take();
              std::vector<Instruction> loads;
              for (const KPiece& p : box.pieces) {
                const int64_t piece_dst = a_slot + p.offset * e_;
                if (im2col_tensor >= 0) {
                  loads.push_back(dma(Opcode::DmaLoad, buf(Buffer::Unified, piece_dst), im2col_tensor,
                                      {group * k.M + m0, p.kh0, p.kw0, p.c0}, {mt, p.kh, p.kw, p.c}, {},
                                      {kb * e_, p.kw * p.c * e_, p.c * e_, e_}));
                } else if (k.op == OpKind::Linear) {
                  // K is the input features: a box is one piece of p.c == kb features per row.
                  for (auto& in : linear_rows_dma(Opcode::DmaLoad, g_.values[static_cast<size_t>(k.input)], x_tensor, m0, mt, p.c0,
                                                  p.c, piece_dst, e_)) {
                    loads.push_back(std::move(in));
                  }
                } else if (k.op == OpKind::MatMul) {
                  loads.push_back(dma(Opcode::DmaLoad, buf(Buffer::Unified, piece_dst), x_tensor,
                                      batch_coords(k.input, group, {m0, p.c0}), {mt, p.c}, {}, {kb * e_, e_}));
                } else {
                  for (const Segment& s : segments(k, m0, mt)) {
                    const int64_t c = group * channels + p.c0;
                    const int64_t dst = piece_dst + s.offset * kb * e_;
                    const int64_t w = s.col * sw - k.conv.pads_begin.back() + p.kw0 * dw;
                    if (conv2d) {
                      const int64_t h = s.row * sh - k.conv.pads_begin[0] + p.kh0 * dh;
                      loads.push_back(dma(Opcode::DmaLoad, buf(Buffer::Unified, dst), x_tensor, {s.batch, c, h, w},
                                          {s.length, p.kh, p.kw, p.c}, {{0, 0, 0, sw}, {0, 0, dh, 0}, {0, 0, 0, dw}, {0, 1, 0, 0}},
                                          {kb * e_, p.kw * p.c * e_, p.c * e_, e_}));
                    } else if (conv1d) {
                      loads.push_back(dma(Opcode::DmaLoad, buf(Buffer::Unified, dst), x_tensor, {s.batch, c, w}, {s.length, p.kw, p.c},
                                          {{0, 0, sw}, {0, 0, dw}, {0, 1, 0}}, {kb * e_, p.c * e_, e_}));
                    }
                  }
                }
              }
              loads.front().waits = {a_free};
              loads.back().signals = {a_ready};
              for (auto& in : loads) add(std::move(in));
            }
            // B: this K box of the weights, as a kb x nt matrix.
            int64_t b_slot;
            const bool load_b = !t.weights_resident || resident_slot[n_index][j] < 0;
            if (load_b) {
              b_slot = b.take();
              if (t.weights_resident) resident_slot[n_index][j] = b_slot;
              // The box's rows of B, piece by piece: rows p.offset.. of the kb x nt tile.
              std::vector<Instruction> loads;
              for (const KPiece& p : box.pieces) {
                const BufferRef dst = buf(Buffer::Weight, b_slot + p.offset * nt * e_);
                if (k.op == OpKind::Linear) {
                  loads.push_back(dma(Opcode::DmaLoad, dst, w_tensor, {oc0, p.c0}, {p.c, nt}, {{0, 1}, {1, 0}}));
                } else if (k.op == OpKind::MatMul) {
                  loads.push_back(dma(Opcode::DmaLoad, dst, w_tensor, batch_coords(k.weight, group, {p.c0, n0}), {p.c, nt}));
                } else if (conv2d) {
                  loads.push_back(dma(Opcode::DmaLoad, dst, w_tensor, {oc0, p.c0, p.kh0, p.kw0}, {p.kh, p.kw, p.c, nt},
                                      {{0, 0, 1, 0}, {0, 0, 0, 1}, {0, 1, 0, 0}, {1, 0, 0, 0}}));
                } else {
                  loads.push_back(dma(Opcode::DmaLoad, dst, w_tensor, {oc0, p.c0, p.kw0}, {p.kw, p.c, nt},
                                      {{0, 0, 1}, {0, 1, 0}, {1, 0, 0}}));
                }
              }
              // Resident weights are one set: n-tiles outer, per n-tile (reused slots); M tiles
              // outer, for the whole kernel.
              const bool set_start = t.m_outer ? (first_visit && j == 0) : (j == 0);
              if (!t.weights_resident || set_start) loads.front().waits = {b_free};
              loads.back().signals = {b_ready};
              for (auto& in : loads) add(std::move(in));
            } else {
              b_slot = resident_slot[n_index][j];
            }
            if (j == 0) flush_store();  // the previous tile's store, behind this tile's first loads
            Instruction ls;
            ls.opcode = Opcode::MxuLoadStationary;
            ls.src = buf(Buffer::Weight, b_slot);
            ls.rows = kb;
            ls.cols = nt;
            ls.src_stride = nt * e_;
            if (load_b) ls.waits = {b_ready};
            const bool set_end = t.m_outer ? (last_visit && last_k) : (last_m && last_k);
            if (!t.weights_resident || set_end) ls.signals = {b_free};
            add(ls);
            Instruction mm;
            mm.opcode = Opcode::MxuMatmul;
            mm.dst = buf(Buffer::Accumulator, acc_slot);
            mm.dst_stride = nt * 4;
            mm.accumulate = bias || j > 0;
            if (j == 0) {
              mm.waits = {bias ? bias_ready : acc_free};
              if (!resident_in && (window_mode ? window_first_use : load_a)) mm.waits.push_back(a_ready);
              if (resident_in && first_visit && group == 0) mm.waits.push_back(input_written);
            } else if (load_a) {
              mm.waits = {a_ready};
            }
            std::vector<int> done;
            const bool a_done = t.a_resident ? last_n : !window_mode || (last_k && window_last_use);
            if (!resident_in && a_done) done.push_back(a_free);
            if (last_k) done.push_back(acc_ready);
            if (window_mode) {
              // One matmul per output row: the box's vectors, one pixel (sw columns) apart, each
              // read from the window in place (a vector pattern when the box is not one run).
              const int64_t pixel = resident_in ? resident_in->channels * e_ : channels * e_;  // window bytes per pixel
              mm.src = buf(Buffer::Unified, window + window_vector(mm, box.k0, kb, {kh_total, kw_total, channels},
                                                                   {dh * pitch, dw * pixel, e_}));
              mm.src_stride = sw * pixel;
              mm.count = tile.cols;
              matmul_rows(mm, tile.rows, sh * pitch, tile.cols * nt * 4, done);
            } else if (resident_in) {
              // A linear layer's input rows where the previous linear layer wrote them.
              const ResidentTensor& r = *resident_in;
              mm.src = buf(Buffer::Unified, r.base + (m0 * r.channels + box.k0) * e_);
              mm.src_stride = r.channels * e_;
              mm.count = mt;
              mm.signals = done;
              add(mm);
            } else {
              mm.src = buf(Buffer::Unified, a_slot);
              mm.src_stride = kb * e_;
              mm.count = mt;
              mm.signals = done;
              add(mm);
            }
          }
          const bool last_tile = group + 1 == k.groups && last_visit;
          if (resident_out) {
            // Epilogue straight into the resident tensor: one run of pixels per output row,
            // channels oc0.. at each pixel.
            const ResidentTensor& r = *resident_out;
            const DType acc_type = accumulator_type(arch_.mxu.operand_type);
            std::vector<Instruction> ops;
            for (const Segment& sg : segments(k, m0, mt)) {
              const int64_t dst = r.base + ((sg.batch * r.height + sg.row + r.pad_top) * r.width + sg.col + r.pad_left) * r.channels * e_ +
                                  oc0 * e_;
              Instruction convert = vpu(out_type == DType::Int8 ? Opcode::VpuRequantize : Opcode::VpuCopy,
                                        buf(Buffer::Unified, dst, out_type), buf(Buffer::Accumulator, acc_slot + sg.offset * nt * 4, acc_type),
                                        sg.length, nt);
              convert.dst_stride = r.channels * e_;
              convert.src_stride = nt * 4;
              if (out_type == DType::Int8) {
                convert.multiplier = k.epilogue.scale.multiplier;
                convert.shift = k.epilogue.scale.shift;
              }
              ops.push_back(convert);
              auto in_place = [&](Opcode code, std::optional<double> imm) {
                Instruction in = vpu(code, buf(Buffer::Unified, dst, out_type), buf(Buffer::Unified, dst, out_type), sg.length, nt);
                in.dst_stride = in.src_stride = r.channels * e_;
                in.imm = imm;
                ops.push_back(in);
              };
              if (k.epilogue.activation == Epilogue::Activation::Relu) in_place(Opcode::VpuRelu, std::nullopt);
              if (k.epilogue.activation == Epilogue::Activation::Clip) {
                in_place(Opcode::VpuMax, k.epilogue.clip_low);
                in_place(Opcode::VpuMin, k.epilogue.clip_high);
              }
            }
            ops.front().waits = {acc_ready};
            if (first_visit && group == 0 && padded) ops.front().waits.push_back(zeroed);
            ops.back().signals = {acc_free};
            if (last_tile) {
              ops.back().signals.push_back(written);
              ops.back().signals.push_back(finished);
            }
            for (auto& in : ops) add(std::move(in));
            continue;
          }
          // Epilogue: accumulators -> output slot, then the activation.
          const int64_t out_slot = out.take();
          Instruction convert = vpu(out_type == DType::Int8 ? Opcode::VpuRequantize : Opcode::VpuCopy,
                                    buf(Buffer::Unified, out_slot, out_type),
                                    buf(Buffer::Accumulator, acc_slot, accumulator_type(arch_.mxu.operand_type)), mt, nt);
          if (out_type == DType::Int8) {
            convert.multiplier = k.epilogue.scale.multiplier;
            convert.shift = k.epilogue.scale.shift;
          }
          convert.waits = {acc_ready, out_free};
          if (k.epilogue.activation == Epilogue::Activation::None) {
            convert.signals = {acc_free, out_ready};
            add(convert);
          } else {
            convert.signals = {acc_free};
            add(convert);
            activation(k.epilogue, out_slot, out_type, mt, nt, {out_ready});
          }
          // Store (deferred): pixels x nt channels into the NC(H)W output.
          std::vector<Instruction> stores;
          if (k.op == OpKind::Linear) {
            stores = linear_rows_dma(Opcode::DmaStore, g_.values[static_cast<size_t>(k.output)], y_tensor, m0, mt, oc0, nt,
                                       out_slot, e_out);
          } else if (k.op == OpKind::MatMul) {
            stores.push_back(dma(Opcode::DmaStore, buf(Buffer::Unified, out_slot), y_tensor,
                                 batch_coords(k.output, group, {m0, n0}), {mt, nt}, {}, {nt * e_out, e_out}));
          } else if (window_mode && conv2d) {
            stores.push_back(dma(Opcode::DmaStore, buf(Buffer::Unified, out_slot), y_tensor, {tile.batch, oc0, tile.row, tile.col},
                                 {tile.rows, tile.cols, nt}, {{0, 0, 1, 0}, {0, 0, 0, 1}, {0, 1, 0, 0}},
                                 {tile.cols * nt * e_out, nt * e_out, e_out}));
          } else {
            for (const Segment& s : segments(k, m0, mt)) {
              const int64_t src = out_slot + s.offset * nt * e_out;
              if (conv2d) {
                stores.push_back(dma(Opcode::DmaStore, buf(Buffer::Unified, src), y_tensor, {s.batch, oc0, s.row, s.col},
                                     {s.length, nt}, {{0, 0, 0, 1}, {0, 1, 0, 0}}, {nt * e_out, e_out}));
              } else {
                stores.push_back(dma(Opcode::DmaStore, buf(Buffer::Unified, src), y_tensor, {s.batch, oc0, s.col},
                                     {s.length, nt}, {{0, 0, 1}, {0, 1, 0}}, {nt * e_out, e_out}));
              }
            }
          }
          stores.front().waits = {out_ready};
          stores.back().signals = {out_free};
          pending_store = std::move(stores);
        }
      }
    }
    flush_store();
    if (resident_out) {
      pending_resident_token_ = written;
      pending_done_token_ = finished;
    }
  }

  // The coordinates of batch entry `index` of `value` (its dims before the last two, row
  // major), followed by `inner` for the last two dims.
  std::vector<int64_t> batch_coords(int value, int64_t index, std::vector<int64_t> inner) const {
    const auto& shape = g_.values[static_cast<size_t>(value)].shape;
    std::vector<int64_t> coords(shape.size() - 2);
    for (size_t d = coords.size(); d-- > 0;) {
      coords[d] = index % shape[d];
      index /= shape[d];
    }
    coords.insert(coords.end(), inner.begin(), inner.end());
    return coords;
  }

  // A window-mode matmul reads K indices [k0, k0 + kb) of a window whose (kh, kw, c) are
  // `stride` bytes apart: returns the byte offset of the first element from the window's start,
  // and gives `mm` a vector pattern unless the elements are one contiguous run. Dimensions
  // that lie next to each other are merged and the pattern starts in the kernel row of k0: in
  // a 3x3x64 window, the 115 indices from k = 115 (kernel rows 0 and 1, 192 each) read as
  // `vector_extent=[2,192] vector_start=115`.
  int64_t window_vector(Instruction& mm, int64_t k0, int64_t kb, std::vector<int64_t> extent, std::vector<int64_t> stride) const {
    // Merge d into d+1 where d's step is exactly d+1's whole extent; drop dimensions of 1.
    for (size_t d = extent.size() - 1; d-- > 0;) {
      if (stride[d] == extent[d + 1] * stride[d + 1]) {
        extent[d + 1] *= extent[d];
        extent[d] = 1;
      }
    }
    std::vector<int64_t> e, st;
    for (size_t d = 0; d < extent.size(); ++d) {
      if (extent[d] > 1) {
        e.push_back(extent[d]);
        st.push_back(stride[d]);
      }
    }
    if (e.empty()) {
      e = {1};
      st = {e_};
    }
    // Fold the outermost digit of k0 into the address.
    int64_t inner = 1;
    for (size_t d = 1; d < e.size(); ++d) inner *= e[d];
    const int64_t first_outer = k0 / inner, last_outer = (k0 + kb - 1) / inner;
    const int64_t base = first_outer * st[0];
    e[0] = last_outer - first_outer + 1;
    mm.vector_start = k0 - first_outer * inner;
    mm.vector_extent = e;
    mm.vector_stride = st;
    const std::vector<int64_t> offsets = vector_offsets(mm, kb, e_);
    bool contiguous = true;
    for (int64_t r = 0; r < kb && contiguous; ++r) contiguous = offsets[static_cast<size_t>(r)] == offsets[0] + r * e_;
    const int64_t first = offsets[0];
    if (contiguous) {
      mm.vector_extent.clear();
      mm.vector_stride.clear();
      mm.vector_start = 0;
      return base + first;
    }
    return base;
  }

  // Linear layers view x [..., K] and y [..., N] as matrices [rows, K] and [rows, N]: row m is
  // the m-th index of the leading dims in row-major order (a rank-1 value is one row). One DMA
  // moves each run of rows that is contiguous along the second-to-last dim; its buffer rows are
  // `row_bytes` apart.
  std::vector<Instruction> linear_rows_dma(Opcode op, const Value& v, int tensor, int64_t m0, int64_t mt, int64_t c0,
                                           int64_t c, int64_t slot, int64_t e) {
    std::vector<Instruction> out;
    const size_t rank = v.shape.size();
    if (rank == 1) {
      out.push_back(dma(op, buf(Buffer::Unified, slot), tensor, {c0}, {c}, {}, {e}));
      return out;
    }
    const int64_t per = v.shape[rank - 2];  // rows in one run of the second-to-last dim
    for (int64_t m = m0; m < m0 + mt;) {
      const int64_t row = m % per, len = std::min(per - row, m0 + mt - m);
      std::vector<int64_t> coords(rank, 0);
      int64_t lead = m / per;
      for (size_t d = rank - 2; d-- > 0;) {
        coords[d] = lead % v.shape[d];
        lead /= v.shape[d];
      }
      coords[rank - 2] = row;
      coords[rank - 1] = c0;
      out.push_back(dma(op, buf(Buffer::Unified, slot + (m - m0) * c * e), tensor, coords, {len, c}, {}, {c * e, e}));
      m += len;
    }
    return out;
  }

  // Writes the im2col matrix of every group to a DRAM scratch tensor [groups*M, KH, KW, C/g]
  // through the A slots of the unified buffer; returns the tensor.
  int materialize_im2col(const GemmKernel& k, const GemmTiling& t) {
    const bool conv2d = k.conv.kernel.size() == 2;
    const int64_t channels = k.conv.in_channels / k.groups;
    const int64_t kh = conv2d ? k.conv.kernel[0] : 1, kw = k.conv.kernel.back();
    TensorDecl decl;
    decl.name = tensor_name_for(k.name + ".im2col");
    decl.dtype = arch_.mxu.operand_type;
    decl.shape = {k.groups * k.M, kh, kw, channels};
    decl.kind = TensorKind::Scratch;
    int index = static_cast<int>(program_.tensors.size());
    program_.tensors.push_back(decl);
    Node node;
    node.kind = Node::Kind::TensorDecl;
    node.declaration = index;
    program_.body.insert(program_.body.begin() + static_cast<long>(declarations_end()), node);
    comment(fmt::format("{}: materialize im2col ({} x {} x {} x {} elements, {}x the input)", k.name, k.groups * k.M, kh,
                        kw, channels, fmt::format("{:.2f}", static_cast<double>(k.groups * k.M * k.K) /
                                                                static_cast<double>(g_.values[static_cast<size_t>(k.input)].element_count()))));
    const int64_t row_bytes = k.K * e_;
    const int64_t staging = std::max<int64_t>(1, (2 * t.a_slot_bytes) / row_bytes);
    if (row_bytes > 2 * t.a_slot_bytes + 2 * t.out_slot_bytes) {
      throw Error(op_location(g_, label_), fmt::format("op '{}': one im2col row ({} bytes) does not fit the unified buffer "
                                                    "staging area; use --im2col=buffer", k.name, row_bytes));
    }
    const int x = tensor(k.input);
    for (int64_t group = 0; group < k.groups; ++group) {
      for (int64_t m0 = 0; m0 < k.M; m0 += staging) {
        const int64_t mt = std::min(staging, k.M - m0);
        for (const Segment& s : segments(k, m0, mt)) {
          const int64_t dst = s.offset * row_bytes;
          const int64_t c = group * channels;
          const int64_t w = s.col * k.conv.strides.back() - k.conv.pads_begin.back();
          if (conv2d) {
            const int64_t h = s.row * k.conv.strides[0] - k.conv.pads_begin[0];
            add(dma(Opcode::DmaLoad, buf(Buffer::Unified, dst), x, {s.batch, c, h, w}, {s.length, kh, kw, channels},
                    {{0, 0, 0, k.conv.strides[1]}, {0, 0, k.conv.dilations[0], 0}, {0, 0, 0, k.conv.dilations[1]}, {0, 1, 0, 0}},
                    {row_bytes, kw * channels * e_, channels * e_, e_}));
          } else {
            add(dma(Opcode::DmaLoad, buf(Buffer::Unified, dst), x, {s.batch, c, w}, {s.length, kw, channels},
                    {{0, 0, k.conv.strides[0]}, {0, 0, k.conv.dilations[0]}, {0, 1, 0}}, {row_bytes, channels * e_, e_}));
          }
        }
        add(dma(Opcode::DmaStore, buf(Buffer::Unified, 0), index, {group * k.M + m0, 0, 0, 0}, {mt, kh, kw, channels}));
      }
    }
    return index;
  }

  // ---------------------------------------------------------------- attention
  // Scores of masked positions, the floor of a row's running max, and of a row's sum. A
  // masked score minus any floored max is still about -3e38, whose exp is 0, so a row (or a
  // tile's part of it) with no visible key adds nothing, and a row that sees no key at all
  // has sum 0, floored, times outputs of 0: the reference's 0.
  static constexpr double kMaskedScore = -3e38, kMaxFloor = -1e30, kSumFloor = 1e-30;

  struct ScoreTile {
    int64_t j0, cols;
    TileClass cls;
  };
  // The score tiles of queries [i0, i0 + rows) that are not empty under the mask, in key order.
  static std::vector<ScoreTile> visible_tiles(const AttentionKernel& k, int64_t i0, int64_t rows) {
    std::vector<ScoreTile> tiles;
    for (int64_t j0 = 0; j0 < k.seq_k; j0 += k.tiling.k_block) {
      const int64_t cols = std::min(k.tiling.k_block, k.seq_k - j0);
      const TileClass c = k.classify(i0, rows, j0, cols);
      if (c != TileClass::Empty) tiles.push_back({j0, cols, c});
    }
    return tiles;
  }

  // A block of queries of one batch entry and head, with the score tiles it computes.
  struct QueryBlock {
    int64_t b, h, kv, bh;  // batch entry, query head, its key/value head, b * heads + h
    int64_t i0, rows, block;
    bool last_of_group;  // the last query head of its key/value head
    std::vector<ScoreTile> tiles;
  };
  // Every block of queries: per batch entry and key/value head, per block, the query heads that
  // share the key/value head one after the other (so they share its key/value tiles).
  template <typename Fn>
  static void for_each_query_block(const AttentionKernel& k, Fn&& fn) {
    const int64_t group = k.heads / k.kv_heads, br = k.tiling.q_block;
    for (int64_t b = 0; b < k.batch; ++b) {
      for (int64_t kv = 0; kv < k.kv_heads; ++kv) {
        for (int64_t i0 = 0; i0 < k.seq_q; i0 += br) {
          const int64_t rows = std::min(br, k.seq_q - i0);
          const std::vector<ScoreTile> tiles = visible_tiles(k, i0, rows);
          for (int64_t h = kv * group; h < (kv + 1) * group; ++h) {
            fn(QueryBlock{b, h, kv, b * k.heads + h, i0, rows, i0 / br, h + 1 == (kv + 1) * group, tiles});
          }
        }
      }
    }
  }

  // The DMA load of a block of queries of head h into `slot` (rows x head dim, dense).
  void load_query_block(const AttentionKernel& k, int64_t b, int64_t h, int64_t i0, int64_t rows, int64_t slot, int free,
                        int ready) {
    Instruction in = dma(Opcode::DmaLoad, buf(Buffer::Unified, slot), tensor(k.q), {b, i0, h * k.head_dim}, {rows, k.head_dim},
                         {}, {k.head_dim * e_, e_});
    in.waits = {free};
    in.signals = {ready};
    add(in);
  }

  int declare_scratch(const std::string& name, DType type, std::vector<int64_t> shape) {
    TensorDecl decl;
    decl.name = tensor_name_for(name);
    while (program_.find_tensor(decl.name) >= 0) decl.name += "_";
    decl.dtype = type;
    decl.shape = std::move(shape);
    decl.kind = TensorKind::Scratch;
    const int index = static_cast<int>(program_.tensors.size());
    program_.tensors.push_back(decl);
    Node node;
    node.kind = Node::Kind::TensorDecl;
    node.declaration = index;
    program_.body.insert(program_.body.begin() + static_cast<long>(declarations_end()), node);
    return index;
  }

  // A partial score tile in ub (fp32, `pitch` bytes per row): each row's masked columns become
  // kMaskedScore. A row of queries sees one run of keys, so its masked columns are at most a
  // run before it and one after; rows with the same runs share an instruction. The first
  // instruction waits on `first_waits`.
  void mask_partial_tile(const AttentionKernel& k, int64_t i0, int64_t rows, int64_t j0, int64_t cols, int64_t base,
                         int64_t pitch, std::vector<int> first_waits = {}) {
    auto runs = [&](int64_t r) {
      auto [lo, hi] = k.visible_keys(i0 + r, j0, j0 + cols - 1);
      lo -= j0;                                         // as columns of the tile
      hi -= j0;
      std::vector<std::pair<int64_t, int64_t>> masked;  // (first column, count)
      if (lo > hi) {
        masked.emplace_back(0, cols);
      } else {
        if (lo > 0) masked.emplace_back(0, lo);
        if (hi < cols - 1) masked.emplace_back(hi + 1, cols - 1 - hi);
      }
      return masked;
    };
    for (int64_t r = 0; r < rows;) {
      const auto these = runs(r);
      int64_t n = 1;
      while (r + n < rows && runs(r + n) == these) ++n;
      for (const auto& [c0, count] : these) {
        const int64_t at = base + r * pitch + c0 * 4;
        Instruction in = vpu(Opcode::VpuMin, buf(Buffer::Unified, at, DType::FP32), buf(Buffer::Unified, at, DType::FP32), n, count);
        in.dst_stride = in.src_stride = pitch;
        in.imm = kMaskedScore;
        in.waits = std::move(first_waits);
        first_waits.clear();
        add(in);
      }
      r += n;
    }
  }

  // The partial tiles' mask patterns (AttentionTiling::mask_patterns): the DMA writes zeros
  // (every coordinate of its load is outside q, so it reads nothing), then the VPU masks each
  // pattern row by row, once for the whole kernel.
  void build_mask_patterns(const AttentionKernel& k) {
    const AttentionTiling& t = k.tiling;
    if (t.mask_patterns.empty()) return;
    const int64_t n = static_cast<int64_t>(t.mask_patterns.size()), step = t.q_block * t.k_block * 4;
    comment(fmt::format("{}: {} mask tile{} for the partial score tiles, built once", k.name, n, n == 1 ? "" : "s"));
    const int zeroed = token("masks_zeroed", Unit::Dma, Unit::Vpu);
    Instruction zero = zero_fill(k.q, t.patterns_base, n * t.q_block, t.k_block * 4);
    zero.signals = {zeroed};
    add(zero);
    for (int64_t i = 0; i < n; ++i) {
      const AttentionTiling::MaskPattern& p = t.mask_patterns[static_cast<size_t>(i)];
      mask_partial_tile(k, p.offset, p.rows, 0, p.cols, t.patterns_base + i * step, p.cols * 4,
                        i == 0 ? std::vector<int>{zeroed} : std::vector<int>{});
    }
  }

  // dst += src2 on a rows x cols fp32 tile in ub (dst rows `pitch` bytes apart, src2 dense).
  Instruction add_to_tile(int64_t dst, int64_t pitch, int64_t rows, int64_t cols, int64_t src2) {
    Instruction in = vpu(Opcode::VpuAdd, buf(Buffer::Unified, dst, DType::FP32), buf(Buffer::Unified, dst, DType::FP32), rows, cols);
    in.dst_stride = in.src_stride = pitch;
    in.src2 = buf(Buffer::Unified, src2, DType::FP32);
    return in;
  }

  // Masks a partial score tile at ub `base` (fp32, `pitch` bytes per row): adds its pattern
  // when one was built, else row by row.
  void mask_tile(const AttentionKernel& k, int64_t i0, int64_t rows, int64_t j0, int64_t cols, int64_t base, int64_t pitch) {
    const AttentionTiling& t = k.tiling;
    const AttentionTiling::MaskPattern key{i0 - j0, rows, cols};
    const auto it = std::find(t.mask_patterns.begin(), t.mask_patterns.end(), key);
    if (it == t.mask_patterns.end()) {
      mask_partial_tile(k, i0, rows, j0, cols, base, pitch);
      return;
    }
    add(add_to_tile(base, pitch, rows, cols, t.patterns_base + (it - t.mask_patterns.begin()) * t.q_block * t.k_block * 4));
  }

  // The DMA load of the additive mask for a score tile: the mask broadcasts to [batch, heads,
  // seq_q, seq_k] (aligned right), so dims of size 1 step 0.
  Instruction mask_tile_load(const AttentionKernel& k, int64_t b, int64_t h, int64_t i0, int64_t rows, int64_t j0, int64_t cols,
                             int64_t slot) {
    const Value& mask = g_.values[static_cast<size_t>(k.mask)];
    const std::vector<int64_t> shape = mask.shape.empty() ? std::vector<int64_t>{1} : mask.shape;
    const int64_t rank = static_cast<int64_t>(shape.size()), em = dtype_size(mask.dtype);
    const int64_t full[4] = {b, h, i0, j0};
    std::vector<int64_t> coords(static_cast<size_t>(rank), 0), row_step(static_cast<size_t>(rank), 0),
        col_step(static_cast<size_t>(rank), 0);
    for (int64_t d = 0; d < rank; ++d) {
      const int64_t f = d + 4 - rank;
      const size_t i = static_cast<size_t>(d);
      if (f < 0 || shape[i] == 1) continue;
      coords[i] = full[f];
      if (f == 2) row_step[i] = 1;
      if (f == 3) col_step[i] = 1;
    }
    return dma(Opcode::DmaLoad, buf(Buffer::Unified, slot + k.tiling.q_block * k.tiling.k_block * 4), tensor(k.mask), coords,
               {rows, cols}, {row_step, col_step}, {cols * em, em});
  }

  // Adds a mask tile (loaded by mask_tile_load into `slot`) to the fp32 scores at `dst`.
  void add_mask_tile(const AttentionKernel& k, int64_t slot, int64_t dst, int64_t pitch, int64_t rows, int64_t cols, int ready,
                     int free) {
    const DType type = g_.values[static_cast<size_t>(k.mask)].dtype;
    Instruction widen = vpu(Opcode::VpuCopy, buf(Buffer::Unified, slot, DType::FP32),
                            buf(Buffer::Unified, slot + k.tiling.q_block * k.tiling.k_block * 4, type), rows, cols);
    widen.waits = {ready};
    add(widen);
    Instruction sum = add_to_tile(dst, pitch, rows, cols, slot);
    sum.signals = {free};
    add(sum);
  }

  Instruction load_stationary(int64_t wb_address, int64_t rows, int64_t cols, int64_t stride, bool transpose) {
    Instruction in;
    in.opcode = Opcode::MxuLoadStationary;
    in.src = buf(Buffer::Weight, wb_address);
    in.rows = rows;
    in.cols = cols;
    in.src_stride = stride;
    in.transpose = transpose;
    return in;
  }
  Instruction matmul(int64_t ub_address, int64_t stride, int64_t count, int64_t acc_address, int64_t acc_stride, bool accumulate) {
    Instruction in;
    in.opcode = Opcode::MxuMatmul;
    in.src = buf(Buffer::Unified, ub_address);
    in.src_stride = stride;
    in.count = count;
    in.dst = buf(Buffer::Accumulator, acc_address);
    in.dst_stride = acc_stride;
    in.accumulate = accumulate;
    return in;
  }

  // The GEMMs of one score tile, one load_stationary + matmul pair per chunk: `ls_waits` go on
  // the first load_stationary, `ls_signals` on the last, and likewise for the matmuls.
  struct TileGemm {
    std::vector<int> ls_waits, ls_signals, mm_waits, mm_signals;
  };
  void add_chunk(Instruction ls, Instruction mm, bool first, bool last, const TileGemm& g) {
    if (first) ls.waits = g.ls_waits, mm.waits = g.mm_waits;
    if (last) ls.signals = g.ls_signals, mm.signals = g.mm_signals;
    add(ls);
    add(mm);
  }

  // q . k^T for one score tile: the key tile (cols x head dim, in wb) is the stationary operand,
  // transposed as it is shifted in, one head-dim chunk (of the reduction) at a time, all into
  // the same accumulators; the query rows stream.
  void score_matmuls(const AttentionKernel& k, int64_t k_slot, int64_t q_slot, int64_t rows, int64_t cols, int64_t acc_slot,
                     const TileGemm& g) {
    const int64_t d = k.head_dim, chunk = k.tiling.d_chunk;
    for (int64_t d0 = 0; d0 < d; d0 += chunk) {
      add_chunk(load_stationary(k_slot + d0 * e_, std::min(chunk, d - d0), cols, d * e_, true),
                matmul(q_slot + d0 * e_, d * e_, rows, acc_slot, cols * 4, d0 > 0), d0 == 0, d0 + chunk >= d, g);
    }
  }

  // p . v for one score tile: the value tile (cols x value dim, in wb) is stationary, one
  // value-dim chunk (of the output columns) at a time; the probability rows stream.
  void value_matmuls(const AttentionKernel& k, int64_t v_slot, int64_t p_address, int64_t p_pitch, int64_t rows, int64_t cols,
                     int64_t acc_slot, bool accumulate, const TileGemm& g) {
    const int64_t dv = k.value_dim, chunk = k.tiling.dv_chunk;
    for (int64_t n0 = 0; n0 < dv; n0 += chunk) {
      add_chunk(load_stationary(v_slot + n0 * e_, cols, std::min(chunk, dv - n0), dv * e_, false),
                matmul(p_address, p_pitch, rows, acc_slot + n0 * 4, dv * 4, accumulate), n0 == 0, n0 + chunk >= dv, g);
    }
  }

  // Key (or value) tiles in a ring of weight-buffer slots. Resident (AttentionTiling::
  // kv_resident): a tile is loaded at its first use in a head and freed after the last block of
  // queries that sees it; the runs of tiles the blocks see move forward, so tiles are loaded and
  // freed in order and the counting tokens stay in step with the ring. Streamed: loaded and
  // freed at every use.
  struct KvTiles {
    int value = -1;         // the graph value (k or v)
    int64_t width = 0;      // head dim (k) or value dim (v)
    Ring ring;
    int ready = -1, free = -1;
    std::map<int64_t, int64_t> slots;  // tile index -> slot, while resident
  };
  struct KvUse {
    int64_t slot = 0;
    std::vector<int> waits, signals;  // for the first load_stationary of the use, and its last
  };
  KvTiles kv_tiles(const AttentionKernel& k, int value, int64_t width, int64_t base, const char* name) {
    KvTiles c;
    c.value = value;
    c.width = width;
    c.ring = {base, k.tiling.buffers.kv_slot, k.tiling.kv_ring};
    c.ready = token(std::string(name) + "_ready", Unit::Dma, Unit::Mxu);
    c.free = token(std::string(name) + "_free", Unit::Mxu, Unit::Dma, k.tiling.kv_ring);
    return c;
  }
  // The use of key/value tile `tile` by a block of queries: emits its load if it is not in the
  // ring; the last block (and query head) that sees it frees its slot.
  KvUse use_kv_tile(const AttentionKernel& k, KvTiles& c, const QueryBlock& qb, const ScoreTile& tile) {
    const int64_t b = qb.b, kv = qb.kv;
    const int64_t index = tile.j0 / k.tiling.k_block;
    KvUse use;
    auto it = c.slots.find(index);
    if (it == c.slots.end()) {
      use.slot = c.ring.take();
      Instruction load = dma(Opcode::DmaLoad, buf(Buffer::Weight, use.slot), tensor(c.value), {b, tile.j0, kv * c.width},
                             {tile.cols, c.width}, {}, {c.width * e_, e_});
      load.waits = {c.free};
      load.signals = {c.ready};
      add(load);
      use.waits = {c.ready};
      if (k.tiling.kv_resident) c.slots[index] = use.slot;
    } else {
      use.slot = it->second;
    }
    if (!k.tiling.kv_resident || (k.tiling.last_block[static_cast<size_t>(index)] == qb.block && qb.last_of_group)) {
      use.signals = {c.free};
      c.slots.erase(index);
    }
    return use;
  }

  void emit(const AttentionKernel& k) {
    label_ = k.name;
    ++kernel_index_;
    const AttentionTiling& t = k.tiling;
    TPUSIM_CHECK(t.chosen, "attention kernel emitted before tiling");
    comment(fmt::format("{}: attention, {} x {} queries x {} keys; {} of {} score tiles per head computed ({} partial), "
                        "{} empty skipped — {}", k.name, k.heads_text(), k.seq_q, k.seq_k, t.partial + t.full, t.tiles(),
                        t.partial, t.empty, t.why));
    build_mask_patterns(k);
    if (k.lowering == AttentionLowering::Flash) {
      emit_flash(k);
    } else {
      emit_materialized(k);
    }
  }

  // Flash: per block of queries, for each visible key tile j
  //   S = q . k_j^T * scale (+ mask);  t = rowmax(S);  m' = max(m, t);  c = exp(m - m');
  //   P = exp(S - m');  l = l * c + rowsum(P);  O = O * c + P . v_j;  m = m'
  // and finally y = O / l. The MXU runs q . k_{j+1}^T while the VPU finishes the softmax of
  // tile j (software pipelining), so the two units overlap.
  void emit_flash(const AttentionKernel& k) {
    const AttentionTiling& t = k.tiling;
    const AttentionBuffers& bu = t.buffers;
    const DType operand = arch_.mxu.operand_type, out_type = g_.values[static_cast<size_t>(k.output)].dtype;
    const int64_t e_out = dtype_size(out_type), br = t.q_block, dv = k.value_dim;
    const bool has_mask = k.mask >= 0;
    const int q_ready = token("q_ready", Unit::Dma, Unit::Mxu), q_free = token("q_free", Unit::Mxu, Unit::Dma, 2);
    KvTiles keys = kv_tiles(k, k.k, k.head_dim, 0, "k"), values = kv_tiles(k, k.v, dv, t.kv_ring * bu.kv_slot, "v");
    const int s_ready = token("s_ready", Unit::Mxu, Unit::Vpu), s_free = token("s_free", Unit::Vpu, Unit::Mxu, 2);
    const int p_ready = token("p_ready", Unit::Vpu, Unit::Mxu), p_free = token("p_free", Unit::Mxu, Unit::Vpu, 2);
    const int pv_ready = token("pv_ready", Unit::Mxu, Unit::Vpu), pv_free = token("pv_free", Unit::Vpu, Unit::Mxu, 2);
    const int out_ready = token("out_ready", Unit::Vpu, Unit::Dma), out_free = token("out_free", Unit::Dma, Unit::Vpu, 2);
    const int mask_ready = has_mask ? token("mask_ready", Unit::Dma, Unit::Vpu) : -1;
    const int mask_free = has_mask ? token("mask_free", Unit::Vpu, Unit::Dma, 2) : -1;
    Ring q{bu.q, bu.q_slot, 2}, p{bu.p, bu.p_slot, 2}, mask{bu.mask, bu.mask_slot, 2}, out{bu.out, bu.out_slot, 2};
    Ring acc_s{bu.acc_s, bu.acc_s_slot, 2}, acc_pv{bu.acc_pv, bu.acc_pv_slot, 2};
    const int64_t sf = bu.s, o = bu.o;
    const int64_t m = bu.stats, l = m + br * 4, tmax = l + br * 4, tsum = tmax + br * 4;
    const int64_t corr[2] = {tsum + br * 4, tsum + 2 * br * 4};
    auto f32 = [](int64_t a) { return buf(Buffer::Unified, a, DType::FP32); };
    // Per-row statistics (one fp32 per query row, contiguous) are combined as one vector of
    // `rows` elements, not `rows` vectors of one.
    auto rowwise = [&](Opcode code, int64_t dst, int64_t src, int64_t rows, std::optional<int64_t> src2, std::optional<double> imm) {
      Instruction in = vpu(code, f32(dst), f32(src), 1, rows);
      if (src2) in.src2 = f32(*src2);
      in.imm = imm;
      return in;
    };
    auto broadcast = [&](Opcode code, int64_t target, int64_t per_row, int64_t rows, int64_t cols) {
      Instruction in = vpu(code, f32(target), f32(target), rows, cols);
      in.src2 = f32(per_row);
      in.broadcast = true;
      return in;
    };
    std::vector<Instruction> pending_store;
    for_each_query_block(k, [&](const QueryBlock& qb) {
      const auto& [b, h, kv, bh, i0, rows, block, last_of_group, tiles] = qb;
      const size_t count = tiles.size();
      const int64_t q_slot = q.take();
      load_query_block(k, b, h, i0, rows, q_slot, q_free, q_ready);
      for (auto& in : pending_store) add(std::move(in));
      pending_store.clear();
      struct Step {
        KvUse value;
        int64_t mask_slot = 0, s_slot = 0, p_slot = 0;
      };
      std::vector<Step> steps(count);
      // DMA: the key and value tiles not in the weight buffer yet (and the mask); MXU: S = q . k^T.
      auto scores = [&](size_t n) {
        const ScoreTile& tile = tiles[n];
        Step& st = steps[n];
        const KvUse key = use_kv_tile(k, keys, qb, tile);
        st.value = use_kv_tile(k, values, qb, tile);
        if (has_mask) {
          st.mask_slot = mask.take();
          Instruction lm = mask_tile_load(k, b, h, i0, rows, tile.j0, tile.cols, st.mask_slot);
          lm.waits = {mask_free};
          lm.signals = {mask_ready};
          add(lm);
        }
        st.s_slot = acc_s.take();
        std::vector<int> mm_waits = {s_free}, mm_signals = {s_ready};
        if (n == 0) mm_waits.push_back(q_ready);
        if (n + 1 == count) mm_signals.push_back(q_free);
        score_matmuls(k, key.slot, q_slot, rows, tile.cols, st.s_slot, {key.waits, key.signals, mm_waits, mm_signals});
      };
      // VPU: the online softmax of tile n, leaving P (operand type) for the MXU.
      auto softmax = [&](size_t n) {
        const ScoreTile& tile = tiles[n];
        Step& st = steps[n];
        const int64_t cols = tile.cols;
        Instruction scale = vpu(Opcode::VpuMul, f32(sf), buf(Buffer::Accumulator, st.s_slot, DType::FP32), rows, cols);
        scale.imm = k.scale;
        scale.waits = {s_ready};
        scale.signals = {s_free};
        add(scale);
        if (has_mask) add_mask_tile(k, st.mask_slot, sf, cols * 4, rows, cols, mask_ready, mask_free);
        if (tile.cls == TileClass::Partial) mask_tile(k, i0, rows, tile.j0, cols, sf, cols * 4);
        add(vpu(Opcode::VpuReduceMax, f32(tmax), f32(sf), rows, cols));
        const int64_t c = corr[n % 2];
        if (n == 0) {
          add(rowwise(Opcode::VpuMax, m, tmax, rows, std::nullopt, kMaxFloor));
        } else {
          add(rowwise(Opcode::VpuMax, tmax, tmax, rows, m, std::nullopt));
          add(rowwise(Opcode::VpuSub, c, m, rows, tmax, std::nullopt));
          add(rowwise(Opcode::VpuExp, c, c, rows, std::nullopt, std::nullopt));
          add(rowwise(Opcode::VpuCopy, m, tmax, rows, std::nullopt, std::nullopt));
        }
        add(broadcast(Opcode::VpuSub, sf, m, rows, cols));
        add(vpu(Opcode::VpuExp, f32(sf), f32(sf), rows, cols));
        add(vpu(Opcode::VpuReduceSum, f32(n == 0 ? l : tsum), f32(sf), rows, cols));
        if (n > 0) {
          add(rowwise(Opcode::VpuMul, l, l, rows, c, std::nullopt));
          add(rowwise(Opcode::VpuAdd, l, l, rows, tsum, std::nullopt));
        }
        st.p_slot = p.take();
        Instruction narrow = vpu(Opcode::VpuCopy, buf(Buffer::Unified, st.p_slot, operand), f32(sf), rows, cols);
        narrow.waits = {p_free};
        narrow.signals = {p_ready};
        add(narrow);
      };
      // MXU: P . v into a fresh accumulator slot; VPU: O = O * c + that.
      auto values = [&](size_t n) {
        const ScoreTile& tile = tiles[n];
        const int64_t pv_slot = acc_pv.take();
        value_matmuls(k, steps[n].value.slot, steps[n].p_slot, tile.cols * e_, rows, tile.cols, pv_slot, false,
                      {steps[n].value.waits, steps[n].value.signals, {p_ready, pv_free}, {p_free, pv_ready}});
        return pv_slot;
      };
      auto update = [&](size_t n, int64_t pv_slot) {
        const BufferRef pv = buf(Buffer::Accumulator, pv_slot, DType::FP32);
        if (n == 0) {
          Instruction copy = vpu(Opcode::VpuCopy, f32(o), pv, rows, dv);
          copy.waits = {pv_ready};
          copy.signals = {pv_free};
          add(copy);
          return;
        }
        add(broadcast(Opcode::VpuMul, o, corr[n % 2], rows, dv));
        Instruction sum = vpu(Opcode::VpuAdd, f32(o), f32(o), rows, dv);
        sum.src2 = pv;
        sum.waits = {pv_ready};
        sum.signals = {pv_free};
        add(sum);
      };
      scores(0);
      softmax(0);
      for (size_t n = 0; n < count; ++n) {
        if (n + 1 < count) {
          scores(n + 1);
          softmax(n + 1);
        }
        const int64_t pv_slot = values(n);
        update(n, pv_slot);
      }
      // y = O / l, in the output type.
      add(rowwise(Opcode::VpuMax, l, l, rows, std::nullopt, kSumFloor));
      add(rowwise(Opcode::VpuReciprocal, l, l, rows, std::nullopt, std::nullopt));
      add(broadcast(Opcode::VpuMul, o, l, rows, dv));
      const int64_t out_slot = out.take();
      Instruction narrow = vpu(Opcode::VpuCopy, buf(Buffer::Unified, out_slot, out_type), f32(o), rows, dv);
      narrow.waits = {out_free};
      narrow.signals = {out_ready};
      add(narrow);
      Instruction store = dma(Opcode::DmaStore, buf(Buffer::Unified, out_slot), tensor(k.output), {b, i0, h * dv}, {rows, dv},
                              {}, {dv * e_out, e_out});
      store.waits = {out_ready};
      store.signals = {out_free};
      pending_store.push_back(store);
    });
    for (auto& in : pending_store) add(std::move(in));
  }

  // Materialized: three phases, as an unfused graph would run them.
  //   1. scores: S = q . k^T * scale (+ mask) for every visible tile, into the score matrix
  //      (in the unified buffer when it fits, else a DRAM scratch tensor through staging slots);
  //   2. softmax along each row's visible keys on the VPU, into the probability matrix
  //      (the operand type; on chip, or row chunks through DRAM);
  //   3. y = P . v, accumulating over the visible key tiles.
  void emit_materialized(const AttentionKernel& k) {
    const AttentionTiling& t = k.tiling;
    const AttentionBuffers& bu = t.buffers;
    const DType operand = arch_.mxu.operand_type, out_type = g_.values[static_cast<size_t>(k.output)].dtype;
    const int64_t e_out = dtype_size(out_type), br = t.q_block, dv = k.value_dim, sk = k.seq_k;
    const bool on_chip = t.scores_on_chip, has_mask = k.mask >= 0;
    auto f32 = [](int64_t a) { return buf(Buffer::Unified, a, DType::FP32); };
    KvTiles keys = kv_tiles(k, k.k, k.head_dim, 0, "k");
    const int q_ready = token("q_ready", Unit::Dma, Unit::Mxu), q_free = token("q_free", Unit::Mxu, Unit::Dma, 2);
    const int s_ready = token("s_ready", Unit::Mxu, Unit::Vpu), s_free = token("s_free", Unit::Vpu, Unit::Mxu, 2);
    const int mask_ready = has_mask ? token("mask_ready", Unit::Dma, Unit::Vpu) : -1;
    const int mask_free = has_mask ? token("mask_free", Unit::Vpu, Unit::Dma, 2) : -1;
    const int st_ready = on_chip ? -1 : token("staged", Unit::Vpu, Unit::Dma);
    const int st_free = on_chip ? -1 : token("staging_free", Unit::Dma, Unit::Vpu, 2);
    const int scores_t = on_chip ? -1 : declare_scratch(k.name + ".scores", DType::FP32, {k.batch * k.heads, k.seq_q, sk});
    const int probs_t = on_chip ? -1 : declare_scratch(k.name + ".probs", operand, {k.batch * k.heads, k.seq_q, sk});
    Ring q{bu.q, bu.q_slot, 2}, staging{bu.s, bu.s_slot, 2}, mask{bu.mask, bu.mask_slot, 2}, acc_s{bu.acc_s, bu.acc_s_slot, 2};
    // Where the score / probability of (head row `row`, key `j`) lives on chip.
    auto score_at = [&](int64_t row, int64_t j) { return bu.scores + (row * sk + j) * 4; };
    auto prob_at = [&](int64_t row, int64_t j) { return bu.probs + (row * sk + j) * e_; };
    std::vector<Instruction> pending;
    auto flush = [&]() {
      for (auto& in : pending) add(std::move(in));
      pending.clear();
    };

    // 1. Scores.
    comment(fmt::format("{}: 1. scores q . k^T for the visible tiles, {}", k.name,
                        on_chip ? "into the unified buffer" : "spilled to DRAM"));
    for_each_query_block(k, [&](const QueryBlock& qb) {
      const auto& [b, h, kv, bh, i0, rows, block, last_of_group, tiles] = qb;
      const int64_t q_slot = q.take();
      load_query_block(k, b, h, i0, rows, q_slot, q_free, q_ready);
      flush();
      for (size_t n = 0; n < tiles.size(); ++n) {
        const ScoreTile& tile = tiles[n];
        const KvUse key = use_kv_tile(k, keys, qb, tile);
        int64_t mask_slot = 0;
        if (has_mask) {
          mask_slot = mask.take();
          Instruction lm = mask_tile_load(k, b, h, i0, rows, tile.j0, tile.cols, mask_slot);
          lm.waits = {mask_free};
          lm.signals = {mask_ready};
          add(lm);
        }
        flush();  // the previous tile's staging store, behind this tile's loads
        const int64_t s_slot = acc_s.take();
        std::vector<int> mm_waits = {s_free}, mm_signals = {s_ready};
        if (n == 0) mm_waits.push_back(q_ready);
        if (n + 1 == tiles.size()) mm_signals.push_back(q_free);
        score_matmuls(k, key.slot, q_slot, rows, tile.cols, s_slot, {key.waits, key.signals, mm_waits, mm_signals});
        // VPU: scale (and mask) into the score matrix or a staging slot.
        const int64_t dst = on_chip ? score_at(bh * k.seq_q + i0, tile.j0) : staging.take();
        const int64_t pitch = on_chip ? sk * 4 : tile.cols * 4;
        std::vector<Instruction> ops;
        Instruction scale = vpu(Opcode::VpuMul, f32(dst), buf(Buffer::Accumulator, s_slot, DType::FP32), rows, tile.cols);
        scale.dst_stride = pitch;
        scale.imm = k.scale;
        scale.waits = {s_ready};
        if (!on_chip) scale.waits.push_back(st_free);
        scale.signals = {s_free};
        add(scale);
        if (has_mask) add_mask_tile(k, mask_slot, dst, pitch, rows, tile.cols, mask_ready, mask_free);
        if (tile.cls == TileClass::Partial) mask_tile(k, i0, rows, tile.j0, tile.cols, dst, pitch);
        if (!on_chip) {
          program_.body.back().instruction.signals.push_back(st_ready);
          Instruction store = dma(Opcode::DmaStore, buf(Buffer::Unified, dst), scores_t, {bh, i0, tile.j0}, {rows, tile.cols},
                                  {}, {pitch, 4});
          store.waits = {st_ready};
          store.signals = {st_free};
          pending.push_back(store);
        }
      }
    });
    flush();

    // 2. Softmax along each row's visible keys.
    comment(fmt::format("{}: 2. softmax of each row over its visible keys on the vector unit{}", k.name,
                        on_chip ? "" : fmt::format(", {} rows per chunk through DRAM", bu.chunk_rows)));
    const int64_t mx = bu.stats, sum = bu.stats + br * 4;
    const int probs_ready = on_chip ? token("probs_ready", Unit::Vpu, Unit::Mxu) : -1;
    const int in_ready = on_chip ? -1 : token("rows_ready", Unit::Dma, Unit::Vpu);
    const int in_free = on_chip ? -1 : token("rows_free", Unit::Vpu, Unit::Dma, 2);
    const int p_out_ready = on_chip ? -1 : token("probs_out", Unit::Vpu, Unit::Dma);
    const int p_out_free = on_chip ? -1 : token("probs_out_free", Unit::Dma, Unit::Vpu, 2);
    Ring chunks{bu.chunk, bu.chunk_slot, 2};
    for (int64_t bh = 0; bh < k.batch * k.heads; ++bh) {
      for (int64_t i0 = 0; i0 < k.seq_q; i0 += br) {
        const std::vector<ScoreTile> tiles = visible_tiles(k, i0, std::min(br, k.seq_q - i0));
        const int64_t c0 = tiles.front().j0, width = tiles.back().j0 + tiles.back().cols - c0;
        const int64_t step = on_chip ? br : bu.chunk_rows;
        for (int64_t r0 = i0; r0 < std::min(i0 + br, k.seq_q); r0 += step) {
          const int64_t rows = std::min({step, k.seq_q - r0, i0 + br - r0});
          int64_t s_at, p_at, s_pitch, p_pitch;
          if (on_chip) {
            s_at = score_at(bh * k.seq_q + r0, c0);
            p_at = prob_at(bh * k.seq_q + r0, c0);
            s_pitch = sk * 4;
            p_pitch = sk * e_;
          } else {
            s_at = chunks.take();
            p_at = s_at + rows * width * 4;
            s_pitch = width * 4;
            p_pitch = width * e_;
            Instruction load = dma(Opcode::DmaLoad, buf(Buffer::Unified, s_at), scores_t, {bh, r0, c0}, {rows, width}, {},
                                   {s_pitch, 4});
            load.waits = {in_free};
            load.signals = {in_ready};
            add(load);
            flush();
          }
          auto row_op = [&](Opcode code, int64_t dst, int64_t dst_pitch, int64_t src, int64_t src_pitch) {
            Instruction in = vpu(code, f32(dst), f32(src), rows, width);
            in.dst_stride = dst_pitch;
            in.src_stride = src_pitch;
            return in;
          };
          auto per_row = [&](Opcode code, int64_t target, std::optional<double> imm) {  // the statistics as one vector
            Instruction in = vpu(code, f32(target), f32(target), 1, rows);
            in.imm = imm;
            return in;
          };
          auto broadcast = [&](Opcode code, int64_t stat) {
            Instruction in = row_op(code, s_at, s_pitch, s_at, s_pitch);
            in.src2 = f32(stat);
            in.broadcast = true;
            return in;
          };
          Instruction first = row_op(Opcode::VpuReduceMax, mx, 4, s_at, s_pitch);
          if (!on_chip) first.waits = {in_ready};
          add(first);
          add(per_row(Opcode::VpuMax, mx, kMaxFloor));
          add(broadcast(Opcode::VpuSub, mx));
          add(row_op(Opcode::VpuExp, s_at, s_pitch, s_at, s_pitch));
          add(row_op(Opcode::VpuReduceSum, sum, 4, s_at, s_pitch));
          add(per_row(Opcode::VpuMax, sum, kSumFloor));
          add(per_row(Opcode::VpuReciprocal, sum, std::nullopt));
          add(broadcast(Opcode::VpuMul, sum));
          Instruction narrow = row_op(Opcode::VpuCopy, p_at, p_pitch, s_at, s_pitch);
          narrow.dst.type = operand;
          if (!on_chip) {
            narrow.waits = {p_out_free};
            narrow.signals = {in_free, p_out_ready};
          }
          add(narrow);
          if (!on_chip) {
            Instruction store = dma(Opcode::DmaStore, buf(Buffer::Unified, p_at), probs_t, {bh, r0, c0}, {rows, width}, {},
                                    {p_pitch, e_});
            store.waits = {p_out_ready};
            store.signals = {p_out_free};
            pending.push_back(store);
          }
        }
      }
    }
    if (on_chip) program_.body.back().instruction.signals.push_back(probs_ready);
    flush();

    // 3. y = P . v.
    comment(fmt::format("{}: 3. probabilities . v over the visible tiles", k.name));
    KvTiles values = kv_tiles(k, k.v, dv, t.kv_ring * bu.kv_slot, "v");
    const int pv_ready = token("pv_ready", Unit::Mxu, Unit::Vpu), pv_free = token("pv_free", Unit::Vpu, Unit::Mxu, 2);
    const int out_ready = token("out_ready", Unit::Vpu, Unit::Dma), out_free = token("out_free", Unit::Dma, Unit::Vpu, 2);
    const int p_ready = on_chip ? -1 : token("p_ready", Unit::Dma, Unit::Mxu);
    const int p_free = on_chip ? -1 : token("p_free", Unit::Mxu, Unit::Dma, 2);
    Ring p{bu.p, bu.p_slot, 2}, out{bu.out, bu.out_slot, 2}, acc_pv{bu.acc_pv, bu.acc_pv_slot, 2};
    bool first_use = true;
    for_each_query_block(k, [&](const QueryBlock& qb) {
      const auto& [b, h, kv, bh, i0, rows, block, last_of_group, tiles] = qb;
      const int64_t pv_slot = acc_pv.take();
      for (size_t n = 0; n < tiles.size(); ++n) {
        const ScoreTile& tile = tiles[n];
        const KvUse value = use_kv_tile(k, values, qb, tile);
        int64_t p_at, p_pitch;
        std::vector<int> mm_waits, mm_signals;
        if (on_chip) {
          p_at = prob_at(bh * k.seq_q + i0, tile.j0);
          p_pitch = sk * e_;
          if (first_use) mm_waits.push_back(probs_ready);
          first_use = false;
        } else {
          p_at = p.take();
          p_pitch = tile.cols * e_;
          Instruction lp = dma(Opcode::DmaLoad, buf(Buffer::Unified, p_at), probs_t, {bh, i0, tile.j0}, {rows, tile.cols}, {},
                               {p_pitch, e_});
          lp.waits = {p_free};
          lp.signals = {p_ready};
          add(lp);
          mm_waits.push_back(p_ready);
          mm_signals.push_back(p_free);
        }
        if (n == 0) flush();
        if (n == 0) mm_waits.push_back(pv_free);
        if (n + 1 == tiles.size()) mm_signals.push_back(pv_ready);
        value_matmuls(k, value.slot, p_at, p_pitch, rows, tile.cols, pv_slot, n > 0,
                      {value.waits, value.signals, mm_waits, mm_signals});
      }
      const int64_t out_slot = out.take();
      Instruction narrow = vpu(Opcode::VpuCopy, buf(Buffer::Unified, out_slot, out_type),
                               buf(Buffer::Accumulator, pv_slot, DType::FP32), rows, dv);
      narrow.waits = {pv_ready, out_free};
      narrow.signals = {pv_free, out_ready};
      add(narrow);
      Instruction store = dma(Opcode::DmaStore, buf(Buffer::Unified, out_slot), tensor(k.output), {b, i0, h * dv}, {rows, dv},
                              {}, {dv * e_out, e_out});
      store.waits = {out_ready};
      store.signals = {out_free};
      pending.push_back(store);
    });
    flush();
  }

  // ---------------------------------------------------------------- vector kernels
  // A box of a tensor: coordinates and extent over its last dims.
  struct Chunk {
    std::vector<int64_t> coords, extent;
    int64_t elements() const {
      int64_t n = 1;
      for (int64_t e : extent) n *= e;
      return n;
    }
  };
  // Splits `shape` into row-major boxes of at most `limit` elements, each a box over the
  // last dims (at most 4) — [b, full, full, ...] — so one DMA moves it.
  static std::vector<Chunk> chunks(const std::vector<int64_t>& shape, int64_t limit) {
    const size_t rank = shape.size();
    // The first dim d (from the back) whose suffix product exceeds the limit, capped at 4 dims.
    size_t d = rank;
    int64_t suffix = 1;
    while (d > 0 && rank - (d - 1) <= 4 && suffix * shape[d - 1] <= limit) {
      suffix *= shape[d - 1];
      --d;
    }
    std::vector<Chunk> out;
    if (d == 0) {
      out.push_back({std::vector<int64_t>(rank, 0), shape});
      return out;
    }
    // Dims before d-1 are iterated one index at a time; dim d-1 in blocks.
    const size_t split = d - 1;
    const int64_t block = std::max<int64_t>(1, limit / suffix);
    std::vector<int64_t> index(split, 0);
    while (true) {
      for (int64_t b0 = 0; b0 < shape[split]; b0 += block) {
        Chunk c;
        c.coords = index;
        c.coords.push_back(b0);
        c.coords.resize(rank, 0);
        c.extent.push_back(std::min(block, shape[split] - b0));
        for (size_t i = split + 1; i < rank; ++i) c.extent.push_back(shape[i]);
        // With a block of 1 the leading extent may be dropped (keep <= 4 dims).
        if (c.extent.size() > 4) c.extent.erase(c.extent.begin());
        out.push_back(c);
      }
      size_t i = split;
      while (i > 0) {
        if (++index[i - 1] < shape[i - 1]) break;
        index[i - 1] = 0;
        --i;
      }
      if (i == 0) break;
    }
    return out;
  }

  // Tokens and slots shared by the chunked vector kernels.
  struct VectorRings {
    int in_ready, in_free, out_ready, out_free;
    Ring slots;
  };
  VectorRings vector_rings(int64_t slot_bytes, bool input_tokens = true) {
    VectorRings r;
    r.in_ready = input_tokens ? token("in_ready", Unit::Dma, Unit::Vpu) : -1;
    r.in_free = input_tokens ? token("in_free", Unit::Vpu, Unit::Dma, 2) : -1;
    r.out_ready = token("out_ready", Unit::Vpu, Unit::Dma);
    r.out_free = token("out_free", Unit::Dma, Unit::Vpu, 2);
    r.slots = {0, slot_bytes, 2};
    if (2 * slot_bytes > arch_.unified_buffer.bytes) {
      throw Error(op_location(g_, label_), fmt::format("op '{}': a chunk needs {} bytes of unified buffer but the machine has {}",
                                                    label_, 2 * slot_bytes, arch_.unified_buffer.bytes));
    }
    return r;
  }

  void emit(const VectorKernel& k) {
    label_ = k.name;
    ++kernel_index_;
    switch (k.kind) {
      case VectorKernel::Kind::Add:
      case VectorKernel::Kind::Mul:
      case VectorKernel::Kind::Gelu:
      case VectorKernel::Kind::Relu:
      case VectorKernel::Kind::Clip: emit_elementwise(k); break;
      case VectorKernel::Kind::Softmax:
      case VectorKernel::Kind::LayerNorm: emit_row_normalization(k); break;
      case VectorKernel::Kind::MaxPool:
      case VectorKernel::Kind::AvgPool: emit_pool(k); break;
      case VectorKernel::Kind::GlobalAvgPool: emit_global_pool(k); break;
      case VectorKernel::Kind::Copy: emit_copy(k); break;
      case VectorKernel::Kind::Transpose: emit_transpose(k); break;
      case VectorKernel::Kind::Concat: emit_concat(k); break;
    }
  }

  void emit_elementwise(const VectorKernel& k) {
    const Value& y = g_.values[static_cast<size_t>(k.output)];
    const DType type = y.dtype;
    const int64_t e = dtype_size(type);
    const bool wide_int8 = (k.kind == VectorKernel::Kind::Add || k.kind == VectorKernel::Kind::Mul) && type == DType::Int8;
    // Slot layout per element: a, b in the value type; two int32 temporaries for int8 add/mul.
    const int64_t per_element = 2 * e + (wide_int8 ? 8 : 0);
    const int64_t limit = std::max<int64_t>(1, arch_.unified_buffer.bytes / (2 * per_element));
    comment(fmt::format("{}: elementwise on the vector unit, {} elements per chunk", k.name, limit));
    const auto parts = chunks(y.shape, limit);
    VectorRings r = vector_rings(limit * per_element);
    std::vector<Instruction> pending;
    for (const Chunk& c : parts) {
      const int64_t n = c.elements(), cols = c.extent.back(), rows = n / cols;
      const int64_t slot = r.slots.take();
      const int64_t a = slot, b = slot + n * e, ta = slot + 2 * n * e, tb = ta + 4 * n;
      std::vector<Instruction> loads;
      loads.push_back(dma(Opcode::DmaLoad, buf(Buffer::Unified, a), tensor(k.inputs[0]), c.coords, c.extent));
      if (k.kind == VectorKernel::Kind::Add || k.kind == VectorKernel::Kind::Mul) {
        loads.push_back(dma(Opcode::DmaLoad, buf(Buffer::Unified, b), tensor(k.inputs[1]), c.coords, c.extent));
      }
      loads.front().waits = {r.in_free};
      loads.back().signals = {r.in_ready};
      for (auto& in : loads) add(std::move(in));
      for (auto& in : pending) add(std::move(in));
      pending.clear();
      std::vector<Instruction> ops;
      const bool binary = k.kind == VectorKernel::Kind::Add || k.kind == VectorKernel::Kind::Mul;
      if (binary && wide_int8) {
        // int8: widen both to int32, combine, requantize. Add scales each input to the output
        // scale first (multipliers with a shift of kAddShift); mul rescales the product.
        const bool add_op = k.kind == VectorKernel::Kind::Add;
        auto widen = [&](int64_t from, int64_t to, int64_t multiplier) {
          ops.push_back(vpu(Opcode::VpuCopy, buf(Buffer::Unified, to, DType::Int32), buf(Buffer::Unified, from, DType::Int8), rows, cols));
          if (add_op) {
            Instruction mul = vpu(Opcode::VpuMul, buf(Buffer::Unified, to, DType::Int32), buf(Buffer::Unified, to, DType::Int32), rows, cols);
            mul.imm = static_cast<double>(multiplier);
            ops.push_back(mul);
          }
        };
        widen(a, ta, k.add_multiplier[0]);
        widen(b, tb, k.add_multiplier[1]);
        Instruction combine = vpu(add_op ? Opcode::VpuAdd : Opcode::VpuMul, buf(Buffer::Unified, ta, DType::Int32),
                                  buf(Buffer::Unified, ta, DType::Int32), rows, cols);
        combine.src2 = buf(Buffer::Unified, tb, DType::Int32);
        ops.push_back(combine);
        Instruction rq = vpu(Opcode::VpuRequantize, buf(Buffer::Unified, a, DType::Int8), buf(Buffer::Unified, ta, DType::Int32), rows, cols);
        rq.multiplier = k.epilogue.scale.multiplier;
        rq.shift = k.epilogue.scale.shift;
        ops.push_back(rq);
      } else if (binary) {
        Instruction combine = vpu(k.kind == VectorKernel::Kind::Add ? Opcode::VpuAdd : Opcode::VpuMul,
                                  buf(Buffer::Unified, a, type), buf(Buffer::Unified, a, type), rows, cols);
        combine.src2 = buf(Buffer::Unified, b, type);
        ops.push_back(combine);
      } else if (k.kind == VectorKernel::Kind::Gelu) {
        ops.push_back(vpu(Opcode::VpuGelu, buf(Buffer::Unified, a, type), buf(Buffer::Unified, a, type), rows, cols));
      }
      if (!ops.empty()) ops.front().waits = {r.in_ready, r.out_free};
      for (auto& in : ops) add(std::move(in));
      if (ops.empty()) {
        // relu / clip alone: the activation is the whole job.
        Epilogue e2 = k.epilogue;
        Instruction first = vpu(e2.activation == Epilogue::Activation::Relu ? Opcode::VpuRelu : Opcode::VpuMax,
                                buf(Buffer::Unified, a, type), buf(Buffer::Unified, a, type), rows, cols);
        if (e2.activation == Epilogue::Activation::Clip) first.imm = e2.clip_low;
        first.waits = {r.in_ready, r.out_free};
        if (e2.activation == Epilogue::Activation::Relu) {
          first.signals = {r.in_free, r.out_ready};
          add(first);
        } else {
          add(first);
          Instruction hi = vpu(Opcode::VpuMin, buf(Buffer::Unified, a, type), buf(Buffer::Unified, a, type), rows, cols);
          hi.imm = e2.clip_high;
          hi.signals = {r.in_free, r.out_ready};
          add(hi);
        }
      } else if (k.epilogue.activation != Epilogue::Activation::None) {
        activation(k.epilogue, a, type, rows, cols, {r.in_free, r.out_ready});
      } else {
        program_.body.back().instruction.signals = {r.in_free, r.out_ready};
      }
      Instruction store = dma(Opcode::DmaStore, buf(Buffer::Unified, a), tensor(k.output), c.coords, c.extent);
      store.waits = {r.out_ready};
      store.signals = {r.out_free};
      pending.push_back(store);
    }
    for (auto& in : pending) add(std::move(in));
  }

  // Softmax and layernorm along the last dim, on the VPU in fp32: rows of D elements.
  //   softmax:   f = x; m = max(f); f = exp(f - m); s = 1 / sum(f); y = f * s
  //   layernorm: f = x; f -= mean(f); v = rsqrt(mean(f*f) + eps); y = f * v * gamma + beta
  // (gamma and beta multiply along the row, one row at a time in a `repeat`).
  void emit_row_normalization(const VectorKernel& k) {
    const Value& x = g_.values[static_cast<size_t>(k.inputs[0])];
    const DType type = x.dtype;
    const int64_t e = dtype_size(type);
    const int64_t d = x.shape.back();
    const bool norm = k.kind == VectorKernel::Kind::LayerNorm;
    // Per element: the value (type), its fp32 copy, an fp32 temporary; per row: two fp32 stats.
    const int64_t per_element = e + 8;
    const int64_t params = norm ? 2 * d * 4 + 2 * d * e : 0;  // fp32 gamma and beta, and their loads
    const int64_t budget = arch_.unified_buffer.bytes - params;
    const int64_t limit = budget / (2 * per_element + 16);
    if (limit < d) {
      throw Error(op_location(g_, label_), fmt::format("op '{}': one row of {} elements needs {} bytes of unified buffer (with its fp32 "
                                                    "copies) but the machine has {}; use a larger unified_buffer",
                                                    k.name, d, d * (2 * per_element + 16) + params, arch_.unified_buffer.bytes));
    }
    const int64_t rows_limit = limit / d * d;
    comment(fmt::format("{}: {} along rows of {} on the vector unit, {} rows per chunk", k.name, norm ? "layernorm" : "softmax", d,
                        rows_limit / d));
    VectorRings r = vector_rings(rows_limit * per_element + 16 * (rows_limit / d));
    const int64_t param_base = 2 * r.slots.bytes;
    int param_ready = -1;
    if (norm) {
      param_ready = token("params_ready", Unit::Dma, Unit::Vpu);
      const int64_t raw = param_base + 2 * d * 4;
      add(dma(Opcode::DmaLoad, buf(Buffer::Unified, raw), tensor(k.inputs[1]), {0}, {d}));
      Instruction beta = dma(Opcode::DmaLoad, buf(Buffer::Unified, raw + d * e), tensor(k.inputs[2]), {0}, {d});
      beta.signals = {param_ready};
      add(beta);
    }
    const DType gamma_type = norm ? g_.values[static_cast<size_t>(k.inputs[1])].dtype : type;
    const DType beta_type = norm ? g_.values[static_cast<size_t>(k.inputs[2])].dtype : type;
    std::vector<Instruction> pending;
    bool first_chunk = true;
    for (const Chunk& c : chunks(x.shape, rows_limit)) {
      const int64_t n = c.elements(), rows = n / d;
      const int64_t slot = r.slots.take();
      const int64_t value = slot, f = slot + n * e, t = f + 4 * n, stats = t + 4 * n, stats2 = stats + 4 * rows;
      Instruction load = dma(Opcode::DmaLoad, buf(Buffer::Unified, value), tensor(k.inputs[0]), c.coords, c.extent);
      load.waits = {r.in_free};
      load.signals = {r.in_ready};
      add(load);
      for (auto& in : pending) add(std::move(in));
      pending.clear();
      if (norm && first_chunk) {
        // gamma and beta in fp32, once.
        const int64_t raw = param_base + 2 * d * 4;
        Instruction g = vpu(Opcode::VpuCopy, buf(Buffer::Unified, param_base, DType::FP32), buf(Buffer::Unified, raw, gamma_type), 1, d);
        g.waits = {param_ready};
        add(g);
        add(vpu(Opcode::VpuCopy, buf(Buffer::Unified, param_base + d * 4, DType::FP32), buf(Buffer::Unified, raw + d * e, beta_type), 1, d));
      }
      first_chunk = false;
      auto op = [&](Opcode code, int64_t dst, DType dt, int64_t src, DType st, int64_t cols) {
        return vpu(code, buf(Buffer::Unified, dst, dt), buf(Buffer::Unified, src, st), rows, cols);
      };
      auto broadcast = [&](Opcode code, int64_t target, int64_t per_row) {
        Instruction in = op(code, target, DType::FP32, target, DType::FP32, d);
        in.src2 = buf(Buffer::Unified, per_row, DType::FP32);
        in.broadcast = true;
        return in;
      };
      auto scalar = [&](Opcode code, int64_t target, double value_imm) {
        Instruction in = op(code, target, DType::FP32, target, DType::FP32, 1);
        in.imm = value_imm;
        return in;
      };
      Instruction widen = op(Opcode::VpuCopy, f, DType::FP32, value, type, d);
      widen.waits = {r.in_ready, r.out_free};
      add(widen);
      if (!norm) {
        add(op(Opcode::VpuReduceMax, stats, DType::FP32, f, DType::FP32, d));
        add(broadcast(Opcode::VpuSub, f, stats));
        add(op(Opcode::VpuExp, f, DType::FP32, f, DType::FP32, d));
        add(op(Opcode::VpuReduceSum, stats, DType::FP32, f, DType::FP32, d));
        add(op(Opcode::VpuReciprocal, stats, DType::FP32, stats, DType::FP32, 1));
        add(broadcast(Opcode::VpuMul, f, stats));
      } else {
        const double inverse = 1.0 / static_cast<double>(d);
        add(op(Opcode::VpuReduceSum, stats, DType::FP32, f, DType::FP32, d));
        add(scalar(Opcode::VpuMul, stats, inverse));
        add(broadcast(Opcode::VpuSub, f, stats));
        Instruction square = op(Opcode::VpuMul, t, DType::FP32, f, DType::FP32, d);
        square.src2 = buf(Buffer::Unified, f, DType::FP32);
        add(square);
        add(op(Opcode::VpuReduceSum, stats2, DType::FP32, t, DType::FP32, d));
        add(scalar(Opcode::VpuMul, stats2, inverse));
        add(scalar(Opcode::VpuAdd, stats2, k.epsilon));
        add(op(Opcode::VpuRsqrt, stats2, DType::FP32, stats2, DType::FP32, 1));
        add(broadcast(Opcode::VpuMul, f, stats2));
        // gamma and beta along each row.
        Node loop;
        loop.kind = Node::Kind::Repeat;
        loop.loop_variable.push_back('r');
        loop.loop_count = rows;
        for (Opcode code : {Opcode::VpuMul, Opcode::VpuAdd}) {
          Instruction in = vpu(code, buf(Buffer::Unified, f, DType::FP32), buf(Buffer::Unified, f, DType::FP32), 1, d);
          in.src2 = buf(Buffer::Unified, param_base + (code == Opcode::VpuMul ? 0 : d * 4), DType::FP32);
          in.dst.address.terms = {{0, d * 4}};
          in.src.address.terms = {{0, d * 4}};
          in.label = label_;
          Node node;
          node.kind = Node::Kind::Instruction;
          node.instruction = in;
          count_instruction();
          loop.body.push_back(node);
        }
        program_.body.push_back(std::move(loop));
      }
      Instruction narrow = op(Opcode::VpuCopy, value, type, f, DType::FP32, d);
      narrow.signals = {r.in_free, r.out_ready};
      add(narrow);
      Instruction store = dma(Opcode::DmaStore, buf(Buffer::Unified, value), tensor(k.output), c.coords, c.extent);
      store.waits = {r.out_ready};
      store.signals = {r.out_free};
      pending.push_back(store);
    }
    for (auto& in : pending) add(std::move(in));
  }

  // The chunks of a tap-by-tap vector kernel (pooling, depthwise convolution): per image,
  // blocks of channels x output rows, always the whole output width.
  struct WindowChunk {
    int64_t batch, c0, channels, oh0, rows;
  };
  // The store of a window chunk's result (channels x output rows x the whole width, dense in
  // ub at `result`) into the NC(H)W output, behind the VPU's out_ready.
  Instruction window_chunk_store(const WindowChunk& chunk, int64_t result, int yt, int64_t out_w, const VectorRings& r) {
    const bool two_d = program_.tensors[static_cast<size_t>(yt)].shape.size() == 4;  // NCHW, else NCW
    Instruction store = two_d ? dma(Opcode::DmaStore, buf(Buffer::Unified, result), yt, {chunk.batch, chunk.c0, chunk.oh0, 0},
                                    {chunk.channels, chunk.rows, out_w})
                              : dma(Opcode::DmaStore, buf(Buffer::Unified, result), yt, {chunk.batch, chunk.c0, 0},
                                    {chunk.channels, out_w});
    store.waits = {r.out_ready};
    store.signals = {r.out_free};
    return store;
  }
  static std::vector<WindowChunk> window_chunks(const ConvGeometry& p, int64_t rows_per_chunk, int64_t channels_per_chunk) {
    const int64_t out_h = p.out_size.size() == 2 ? p.out_size[0] : 1;
    std::vector<WindowChunk> chunks;
    for (int64_t n = 0; n < p.batch; ++n) {
      for (int64_t c0 = 0; c0 < p.in_channels; c0 += channels_per_chunk) {
        for (int64_t oh0 = 0; oh0 < out_h; oh0 += rows_per_chunk) {
          chunks.push_back({n, c0, std::min(channels_per_chunk, p.in_channels - c0), oh0, std::min(rows_per_chunk, out_h - oh0)});
        }
      }
    }
    return chunks;
  }

  // Pooling: for each kernel tap the DMA loads the tapped input window for a chunk of
  // channels x output rows (padding reads as the type's minimum for max pooling, 0 for
  // average), and the VPU folds it into the result. Taps alternate between two buffers.
  void emit_pool(const VectorKernel& k) {
    const ConvGeometry& p = k.pool;
    const Value& x = g_.values[static_cast<size_t>(k.inputs[0])];
    const DType type = x.dtype;
    const int64_t e = dtype_size(type);
    const bool max = k.kind == VectorKernel::Kind::MaxPool;
    const bool two_d = p.kernel.size() == 2;
    const int64_t out_w = p.out_size.back(), out_h = two_d ? p.out_size[0] : 1;
    const DType acc_type = type == DType::Int8 ? DType::Int32 : DType::FP32;
    // Per output element: the result and two taps (value type), plus a wide sum and temp.
    const int64_t per_element = max ? 3 * e : 3 * e + 8;
    const int64_t limit = std::max<int64_t>(1, arch_.unified_buffer.bytes / (2 * per_element));
    if (out_w > limit) {
      throw Error(op_location(g_, label_),
                  fmt::format("op '{}': one output row ({} elements) needs {} bytes of unified buffer (the result, two "
                              "kernel-tap windows and wide temporaries, double-buffered) but the machine has {}; use a "
                              "larger unified_buffer", k.name, out_w, 2 * out_w * per_element, arch_.unified_buffer.bytes));
    }
    // Whole output rows, as many as fit; whole channels when all rows of one fit.
    const int64_t rows_per_chunk = std::min(out_h, std::max<int64_t>(1, limit / out_w));
    const int64_t channels_per_chunk = rows_per_chunk == out_h ? std::max<int64_t>(1, limit / (out_w * out_h)) : 1;
    comment(fmt::format("{}: {} {} pooling on the vector unit, {} channel(s) x {} row(s) per chunk", k.name,
                        fmt::join(p.kernel, "x"), max ? "max" : "average", channels_per_chunk, rows_per_chunk));
    VectorRings r = vector_rings(limit * per_element, false);
    const int tap_ready = token("tap_ready", Unit::Dma, Unit::Vpu), tap_free = token("tap_free", Unit::Vpu, Unit::Dma, 2);
    std::vector<Instruction> pending;
    const int xt = tensor(k.inputs[0]), yt = tensor(k.output);
    const int64_t taps_h = two_d ? p.kernel[0] : 1;
    int64_t tap_index = 0;
    for (const WindowChunk& chunk : window_chunks(p, rows_per_chunk, channels_per_chunk)) {
      const int64_t n = chunk.batch, c0 = chunk.c0, ct = chunk.channels, oh0 = chunk.oh0, ht = chunk.rows;
      const int64_t count = ct * ht * out_w, rows = ct * ht;
      const int64_t slot = r.slots.take();
      const int64_t result = slot, taps = slot + count * e, sum = taps + 2 * count * e, temp = sum + 4 * count;
      for (int64_t kh = 0; kh < taps_h; ++kh) {
        for (int64_t kw = 0; kw < p.kernel.back(); ++kw) {
          const bool first = kh == 0 && kw == 0;
          const int64_t tap = taps + (tap_index++ % 2) * count * e;
          const int64_t w = -p.pads_begin.back() + kw;
          Instruction load;
          if (two_d) {
            const int64_t h = oh0 * p.strides[0] - p.pads_begin[0] + kh;
            load = dma(Opcode::DmaLoad, buf(Buffer::Unified, tap), xt, {n, c0, h, w}, {ct, ht, out_w},
                       {{0, 1, 0, 0}, {0, 0, p.strides[0], 0}, {0, 0, 0, p.strides[1]}});
          } else {
            load = dma(Opcode::DmaLoad, buf(Buffer::Unified, tap), xt, {n, c0, w}, {ct, out_w}, {{0, 1, 0}, {0, 0, p.strides[0]}});
          }
          if (max) load.imm = type == DType::Int8 ? -128.0 : -std::numeric_limits<double>::infinity();
          load.waits = {tap_free};
          load.signals = {tap_ready};
          add(load);
          if (first) {
            for (auto& in : pending) add(std::move(in));
            pending.clear();
          }
          // Fold the tap in; the first tap initializes the result (or the sum).
          Instruction op;
          if (max) {
            op = vpu(first ? Opcode::VpuCopy : Opcode::VpuMax, buf(Buffer::Unified, result, type),
                     buf(Buffer::Unified, first ? tap : result, type), rows, out_w);
            if (!first) op.src2 = buf(Buffer::Unified, tap, type);
            op.waits = {tap_ready};
            if (first) op.waits.push_back(r.out_free);
            op.signals = {tap_free};
            add(op);
          } else {
            Instruction widen = vpu(Opcode::VpuCopy, buf(Buffer::Unified, first ? sum : temp, acc_type),
                                    buf(Buffer::Unified, tap, type), rows, out_w);
            widen.waits = {tap_ready};
            if (first) widen.waits.push_back(r.out_free);
            widen.signals = {tap_free};
            add(widen);
            if (!first) {
              Instruction acc = vpu(Opcode::VpuAdd, buf(Buffer::Unified, sum, acc_type), buf(Buffer::Unified, sum, acc_type), rows, out_w);
              acc.src2 = buf(Buffer::Unified, temp, acc_type);
              add(acc);
            }
          }
        }
      }
      if (!max) {
        if (type == DType::Int8) {
          Instruction rq = vpu(Opcode::VpuRequantize, buf(Buffer::Unified, result, DType::Int8), buf(Buffer::Unified, sum, DType::Int32), rows, out_w);
          rq.multiplier = k.epilogue.scale.multiplier;
          rq.shift = k.epilogue.scale.shift;
          add(rq);
        } else {
          Instruction scale = vpu(Opcode::VpuMul, buf(Buffer::Unified, sum, DType::FP32), buf(Buffer::Unified, sum, DType::FP32), rows, out_w);
          scale.imm = 1.0 / static_cast<double>(p.kernel_points());
          add(scale);
          add(vpu(Opcode::VpuCopy, buf(Buffer::Unified, result, type), buf(Buffer::Unified, sum, DType::FP32), rows, out_w));
        }
      }
      auto& tail = program_.body.back().instruction.signals;
      tail.push_back(r.out_ready);
      pending.push_back(window_chunk_store(chunk, result, yt, out_w, r));
    }
    for (auto& in : pending) add(std::move(in));
  }

  void emit_global_pool(const VectorKernel& k) {
    const ConvGeometry& p = k.pool;
    const Value& x = g_.values[static_cast<size_t>(k.inputs[0])];
    const DType type = x.dtype;
    const int64_t e = dtype_size(type);
    const int64_t spatial = p.kernel_points();
    const DType acc_type = type == DType::Int8 ? DType::Int32 : DType::FP32;
    const int64_t per_channel = spatial * (e + 4) + 4 + e;
    const int64_t channels_per_chunk = std::min(p.in_channels, std::max<int64_t>(1, arch_.unified_buffer.bytes / (2 * per_channel)));
    if (arch_.unified_buffer.bytes < 2 * per_channel) {
      throw Error(op_location(g_, label_), fmt::format("op '{}': one channel ({} positions) needs {} bytes of unified buffer (with its "
                                                    "int32/fp32 copies, double-buffered) but the machine has {}; use a "
                                                    "larger unified_buffer", k.name, spatial, 2 * per_channel, arch_.unified_buffer.bytes));
    }
    comment(fmt::format("{}: global average pooling on the vector unit, {} channel(s) per chunk", k.name, channels_per_chunk));
    VectorRings r = vector_rings(channels_per_chunk * per_channel);
    std::vector<Instruction> pending;
    const int xt = tensor(k.inputs[0]), yt = tensor(k.output);
    const size_t rank = x.shape.size();
    for (int64_t n = 0; n < p.batch; ++n) {
      for (int64_t c0 = 0; c0 < p.in_channels; c0 += channels_per_chunk) {
        const int64_t ct = std::min(channels_per_chunk, p.in_channels - c0);
        const int64_t slot = r.slots.take();
        const int64_t in = slot, wide = in + ct * spatial * e, sums = wide + ct * spatial * 4, result = sums + ct * 4;
        std::vector<int64_t> coords(rank, 0), extent;
        coords[0] = n;
        coords[1] = c0;
        extent.push_back(ct);
        for (size_t d = 2; d < rank; ++d) extent.push_back(x.shape[d]);
        Instruction load = dma(Opcode::DmaLoad, buf(Buffer::Unified, in), xt, coords, extent);
        load.waits = {r.in_free};
        load.signals = {r.in_ready};
        add(load);
        for (auto& i : pending) add(std::move(i));
        pending.clear();
        Instruction widen = vpu(Opcode::VpuCopy, buf(Buffer::Unified, wide, acc_type), buf(Buffer::Unified, in, type), ct, spatial);
        widen.waits = {r.in_ready, r.out_free};
        add(widen);
        add(vpu(Opcode::VpuReduceSum, buf(Buffer::Unified, sums, acc_type), buf(Buffer::Unified, wide, acc_type), ct, spatial));
        if (type == DType::Int8) {
          Instruction rq = vpu(Opcode::VpuRequantize, buf(Buffer::Unified, result, DType::Int8), buf(Buffer::Unified, sums, DType::Int32), 1, ct);
          rq.multiplier = k.epilogue.scale.multiplier;
          rq.shift = k.epilogue.scale.shift;
          add(rq);
        } else {
          Instruction scale = vpu(Opcode::VpuMul, buf(Buffer::Unified, sums, DType::FP32), buf(Buffer::Unified, sums, DType::FP32), 1, ct);
          scale.imm = 1.0 / static_cast<double>(spatial);
          add(scale);
          add(vpu(Opcode::VpuCopy, buf(Buffer::Unified, result, type), buf(Buffer::Unified, sums, DType::FP32), 1, ct));
        }
        program_.body.back().instruction.signals = {r.in_free, r.out_ready};
        const Value& y = g_.values[static_cast<size_t>(k.output)];
        std::vector<int64_t> out_coords(y.shape.size(), 0);
        out_coords[0] = n;
        out_coords[1] = c0;
        std::vector<std::vector<int64_t>> step(1, std::vector<int64_t>(y.shape.size(), 0));
        step[0][1] = 1;
        Instruction store = dma(Opcode::DmaStore, buf(Buffer::Unified, result), yt, out_coords, {ct}, step);
        store.waits = {r.out_ready};
        store.signals = {r.out_free};
        pending.push_back(store);
      }
    }
    for (auto& i : pending) add(std::move(i));
  }

  // A run of consecutive (row-major) elements of a tensor along one dim: one 1-D DMA.
  struct Run {
    std::vector<int64_t> coords;
    int64_t length;
    size_t dim;
  };
  // `length` elements of `shape` from flat index `flat`, as runs along the innermost dim
  // longer than 1 (a [1, C, 1, 1] tensor runs along C).
  static std::vector<Run> flat_runs(const std::vector<int64_t>& shape, int64_t flat, int64_t length) {
    std::vector<Run> out;
    const size_t rank = shape.size();
    std::vector<int64_t> stride(rank, 1);
    for (size_t d = rank - 1; d > 0; --d) stride[d - 1] = stride[d] * shape[d];
    size_t dim = rank - 1;
    while (dim > 0 && shape[dim] == 1) --dim;
    while (length > 0) {
      std::vector<int64_t> coords(rank);
      int64_t f = flat;
      for (size_t d = 0; d < rank; ++d) {
        coords[d] = f / stride[d];
        f %= stride[d];
      }
      const int64_t run = std::min(length, shape[dim] - coords[dim]);
      out.push_back({coords, run, dim});
      flat += run;
      length -= run;
    }
    return out;
  }

  void emit_copy(const VectorKernel& k) {
    const Value& x = g_.values[static_cast<size_t>(k.inputs[0])];
    const Value& y = g_.values[static_cast<size_t>(k.output)];
    const int64_t e = dtype_size(x.dtype);
    const int64_t limit = std::max<int64_t>(1, arch_.unified_buffer.bytes / (2 * e));
    comment(fmt::format("{}: reshape — copy through the unified buffer", k.name));
    const int64_t total = x.element_count();
    int64_t slot_index = 0;
    for (int64_t f = 0; f < total; f += limit) {
      const int64_t len = std::min(limit, total - f);
      const int64_t slot = (slot_index++ % 2) * limit * e;
      copy_runs(tensor(k.inputs[0]), x.shape, tensor(k.output), y.shape, f, f, len, slot, e);
    }
  }

  // Moves `len` flat elements from tensor `src` (at flat `from`) to `dst` (at flat `to`)
  // through ub[slot]: DMA only, so the in-order DMA queue orders it.
  void copy_runs(int src, const std::vector<int64_t>& src_shape, int dst, const std::vector<int64_t>& dst_shape, int64_t from,
                 int64_t to, int64_t len, int64_t slot, int64_t e) {
    int64_t offset = 0;
    for (const Run& run : flat_runs(src_shape, from, len)) {
      std::vector<std::vector<int64_t>> step(1, std::vector<int64_t>(src_shape.size(), 0));
      step[0][run.dim] = 1;
      add(dma(Opcode::DmaLoad, buf(Buffer::Unified, slot + offset * e), src, run.coords, {run.length}, step));
      offset += run.length;
    }
    offset = 0;
    for (const Run& run : flat_runs(dst_shape, to, len)) {
      std::vector<std::vector<int64_t>> step(1, std::vector<int64_t>(dst_shape.size(), 0));
      step[0][run.dim] = 1;
      add(dma(Opcode::DmaStore, buf(Buffer::Unified, slot + offset * e), dst, run.coords, {run.length}, step));
      offset += run.length;
    }
  }

  void emit_transpose(const VectorKernel& k) {
    const Value& y = g_.values[static_cast<size_t>(k.output)];
    const int64_t e = dtype_size(y.dtype);
    const int64_t limit = std::max<int64_t>(1, arch_.unified_buffer.bytes / (2 * e));
    comment(fmt::format("{}: transpose [{}] — the DMA permutes the addresses", k.name, fmt::join(k.perm, ",")));
    int64_t slot_index = 0;
    for (const Chunk& c : chunks(y.shape, limit)) {
      const int64_t slot = (slot_index++ % 2) * limit * e;
      // Output dim d walks input dim perm[d].
      const size_t rank = y.shape.size(), dims = c.extent.size();
      std::vector<std::vector<int64_t>> steps;
      for (size_t j = 0; j < dims; ++j) {
        std::vector<int64_t> s(rank, 0);
        s[static_cast<size_t>(k.perm[rank - dims + j])] = 1;
        steps.push_back(s);
      }
      std::vector<int64_t> in_coords(rank, 0);
      for (size_t d = 0; d < rank; ++d) in_coords[static_cast<size_t>(k.perm[d])] = c.coords[d];
      add(dma(Opcode::DmaLoad, buf(Buffer::Unified, slot), tensor(k.inputs[0]), in_coords, c.extent, steps));
      add(dma(Opcode::DmaStore, buf(Buffer::Unified, slot), tensor(k.output), c.coords, c.extent));
    }
  }

  void emit_concat(const VectorKernel& k) {
    const Value& y = g_.values[static_cast<size_t>(k.output)];
    const int64_t e = dtype_size(y.dtype);
    const int64_t limit = std::max<int64_t>(1, arch_.unified_buffer.bytes / (2 * e));
    comment(fmt::format("{}: concat along dim {} — copies through the unified buffer", k.name, k.axis));
    int64_t offset = 0, slot_index = 0;
    for (int input : k.inputs) {
      const Value& x = g_.values[static_cast<size_t>(input)];
      for (const Chunk& c : chunks(x.shape, limit)) {
        const int64_t slot = (slot_index++ % 2) * limit * e;
        add(dma(Opcode::DmaLoad, buf(Buffer::Unified, slot), tensor(input), c.coords, c.extent));
        std::vector<int64_t> out = c.coords;
        out[static_cast<size_t>(k.axis)] += offset;
        add(dma(Opcode::DmaStore, buf(Buffer::Unified, slot), tensor(k.output), out, c.extent));
      }
      offset += x.shape[static_cast<size_t>(k.axis)];
    }
  }

  // Depthwise convolution on the VPU: channels x output rows are the vector rows; for each
  // kernel tap the DMA loads the tapped input window and that tap's weight for each row, and
  // the VPU does sum += window * weight (weight broadcast along the row). Integer sums do not
  // depend on order, so int8 results are exactly the reference's.
  void emit(const DepthwiseKernel& k) {
    label_ = k.name;
    ++kernel_index_;
    const ConvGeometry& p = k.conv;
    const Value& x = g_.values[static_cast<size_t>(k.input)];
    const DType type = x.dtype;
    const DType out_type = g_.values[static_cast<size_t>(k.output)].dtype;
    const int64_t e = dtype_size(type), e_out = dtype_size(out_type);
    const DType wide = type == DType::Int8 ? DType::Int32 : DType::FP32;
    const bool two_d = p.kernel.size() == 2;
    const int64_t out_w = p.out_size.back(), out_h = two_d ? p.out_size[0] : 1;
    // Per output element: two tap windows (value type), the wide window and the wide sum,
    // the result; per row: two tap weights, their wide copy, the bias.
    const int64_t per_element = 2 * e + 8 + e_out;
    const int64_t limit = std::max<int64_t>(1, arch_.unified_buffer.bytes / (2 * (per_element + 16)));
    if (out_w > limit) {
      throw Error(op_location(g_, label_),
                  fmt::format("op '{}': one output row ({} elements) needs {} bytes of unified buffer (windows, weights "
                              "and wide temporaries, double-buffered) but the machine has {}; use a larger unified_buffer",
                              k.name, out_w, 2 * out_w * (per_element + 16), arch_.unified_buffer.bytes));
    }
    // Whole output rows, as many as fit; whole channels when all rows of one fit.
    const int64_t rows_per_chunk = std::min(out_h, std::max<int64_t>(1, limit / out_w));
    const int64_t channels_per_chunk = rows_per_chunk == out_h ? std::max<int64_t>(1, limit / (out_w * out_h)) : 1;
    comment(fmt::format("{}: depthwise {} convolution on the vector unit — {}", k.name, fmt::join(p.kernel, "x"), k.why));
    VectorRings r = vector_rings(limit * (per_element + 16), false);
    const int tap_ready = token("tap_ready", Unit::Dma, Unit::Vpu), tap_free = token("tap_free", Unit::Vpu, Unit::Dma, 2);
    const int bias_ready = k.bias >= 0 ? token("bias_ready", Unit::Dma, Unit::Vpu) : -1;
    const int bias_free = k.bias >= 0 ? token("bias_free", Unit::Vpu, Unit::Dma, 2) : -1;
    std::vector<Instruction> pending;
    const int xt = tensor(k.input), wt = tensor(k.weight), yt = tensor(k.output);
    const int64_t taps_h = two_d ? p.kernel[0] : 1;
    int64_t tap_index = 0;
    for (const WindowChunk& chunk : window_chunks(p, rows_per_chunk, channels_per_chunk)) {
      const int64_t n = chunk.batch, c0 = chunk.c0, ct = chunk.channels, oh0 = chunk.oh0, ht = chunk.rows;
      const int64_t count = ct * ht * out_w, rows = ct * ht;
      const int64_t slot = r.slots.take();
      // Slot layout.
      const int64_t windows = slot, sum = windows + 2 * count * e, widened = sum + 4 * count,
                    result = widened + 4 * count, weights = result + count * e_out, weights_wide = weights + 2 * rows * e,
                    bias = weights_wide + 4 * rows;
      for (int64_t kh = 0; kh < taps_h; ++kh) {
        for (int64_t kw = 0; kw < p.kernel.back(); ++kw) {
          const bool first = kh == 0 && kw == 0;
          const int64_t which = tap_index++ % 2;
          const int64_t window = windows + which * count * e, weight = weights + which * rows * e;
          const int64_t w = -p.pads_begin.back() + kw * p.dilations.back();
          Instruction load;
          if (two_d) {
            const int64_t h = oh0 * p.strides[0] - p.pads_begin[0] + kh * p.dilations[0];
            load = dma(Opcode::DmaLoad, buf(Buffer::Unified, window), xt, {n, c0, h, w}, {ct, ht, out_w},
                       {{0, 1, 0, 0}, {0, 0, p.strides[0], 0}, {0, 0, 0, p.strides[1]}});
            add([&] {
              Instruction in = load;
              in.waits = {tap_free};
              return in;
            }());
            // This tap's weight for every (channel, row): w[c, 0, kh, kw] repeated ht times.
            Instruction wl = dma(Opcode::DmaLoad, buf(Buffer::Unified, weight), wt, {c0, 0, kh, kw}, {ct, ht},
                                 {{1, 0, 0, 0}, {0, 0, 0, 0}});
            wl.signals = {tap_ready};
            add(wl);
          } else {
            load = dma(Opcode::DmaLoad, buf(Buffer::Unified, window), xt, {n, c0, w}, {ct, out_w}, {{0, 1, 0}, {0, 0, p.strides[0]}});
            load.waits = {tap_free};
            add(load);
            Instruction wl = dma(Opcode::DmaLoad, buf(Buffer::Unified, weight), wt, {c0, 0, kw}, {ct}, {{1, 0, 0}});
            wl.signals = {tap_ready};
            add(wl);
          }
          if (first) {
            for (auto& in : pending) add(std::move(in));
            pending.clear();
          }
          Instruction widen_w = vpu(Opcode::VpuCopy, buf(Buffer::Unified, weights_wide, wide), buf(Buffer::Unified, weight, type), 1, rows);
          widen_w.waits = {tap_ready};
          if (first) widen_w.waits.push_back(r.out_free);
          add(widen_w);
          add(vpu(Opcode::VpuCopy, buf(Buffer::Unified, first ? sum : widened, wide), buf(Buffer::Unified, window, type), rows, out_w));
          Instruction product = vpu(Opcode::VpuMul, buf(Buffer::Unified, first ? sum : widened, wide),
                                    buf(Buffer::Unified, first ? sum : widened, wide), rows, out_w);
          product.src2 = buf(Buffer::Unified, weights_wide, wide);
          product.broadcast = true;
          product.src2_stride = 4;
          product.signals = {tap_free};
          add(product);
          if (!first) {
            Instruction acc = vpu(Opcode::VpuAdd, buf(Buffer::Unified, sum, wide), buf(Buffer::Unified, sum, wide), rows, out_w);
            acc.src2 = buf(Buffer::Unified, widened, wide);
            add(acc);
          }
        }
      }
      if (k.bias >= 0) {
        // The bias of each row's channel, then added along the row.
        const int64_t bias_slot = bias;  // one per slot set: slot sets alternate
        std::vector<std::vector<int64_t>> step = {{1}, {0}};
        Instruction bl = dma(Opcode::DmaLoad, buf(Buffer::Unified, bias_slot), tensor(k.bias), {c0}, {ct, ht}, step);
        bl.waits = {bias_free};
        bl.signals = {bias_ready};
        add(bl);
        Instruction add_bias = vpu(Opcode::VpuAdd, buf(Buffer::Unified, sum, wide), buf(Buffer::Unified, sum, wide), rows, out_w);
        add_bias.src2 = buf(Buffer::Unified, bias_slot, wide);
        add_bias.broadcast = true;
        add_bias.src2_stride = 4;
        add_bias.waits = {bias_ready};
        add_bias.signals = {bias_free};
        add(add_bias);
      }
      Instruction convert = vpu(out_type == DType::Int8 ? Opcode::VpuRequantize : Opcode::VpuCopy,
                                buf(Buffer::Unified, result, out_type), buf(Buffer::Unified, sum, wide), rows, out_w);
      if (out_type == DType::Int8) {
        convert.multiplier = k.epilogue.scale.multiplier;
        convert.shift = k.epilogue.scale.shift;
      }
      if (k.epilogue.activation == Epilogue::Activation::None) {
        convert.signals = {r.out_ready};
        add(convert);
      } else {
        add(convert);
        activation(k.epilogue, result, out_type, rows, out_w, {r.out_ready});
      }
      pending.push_back(window_chunk_store(chunk, result, yt, out_w, r));
    }
    for (auto& in : pending) add(std::move(in));
  }

  const KernelModule& m_;
  const Graph& g_;
  const ArchConfig& arch_;
  const int64_t e_;
  Program program_;
  std::vector<int> tensor_of_value_;
  std::string label_;
  int kernel_index_ = 0;
  int64_t instructions_ = 0;
  int pending_done_token_ = -1;      // signalled by a kernel that kept its output on chip
  int pending_resident_token_ = -1;  // ... and waited on by the kernel reading it
  const int64_t max_instructions_;
};

}  // namespace

Program emit_program(const KernelModule& module, const ArchConfig& arch, std::vector<int>* tensor_of_value,
                     int64_t max_program_instructions) {
  Emitter emitter(module, arch, max_program_instructions);
  Program program = emitter.run();
  if (tensor_of_value) *tensor_of_value = emitter.tensor_of_value();
  program.file = module.graph.file.empty() ? "compiled.tpu" : module.graph.file;
  return program;
}

}  // namespace tpusim

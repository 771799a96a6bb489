#include "unit/random_gemm_programs.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include <fmt/format.h>

namespace tpusim::test {
namespace {

// Writes a tiled GEMM C = A.B (+ a VPU epilogue) for the case's dataflow. Every tile gets its
// own buffer region, so the only orderings needed are the producer -> consumer tokens.
std::string generate_program(RandomStream& rng, RandomGemmCase& c) {
  const int64_t e = dtype_size(c.type);
  const char* type = c.type == DType::Int8 ? "int8" : "bf16";
  const char* acc_type = c.type == DType::Int8 ? "int32" : "fp32";
  std::string decl, body;
  decl += fmt::format("tensor A {} [{},{}] input\n", type, c.M, c.K);
  decl += fmt::format("tensor B {} [{},{}] input\n", type, c.K, c.N);
  decl += fmt::format("tensor C {} [{},{}] output\n", acc_type, c.M, c.N);
  decl += fmt::format("tensor Q {} [{},{}] output\n", c.type == DType::Int8 ? "int8" : "bf16", c.M, c.N);
  int64_t ub = rng.uniform_int(0, 7), wb = rng.uniform_int(0, 7), acc = 4 * rng.uniform_int(0, 3);
  int tokens = 0;
  auto token = [&](const char* from, const char* to) {
    std::string name = fmt::format("t{}", tokens++);
    decl += fmt::format("token {} {} -> {}\n", name, from, to);
    return name;
  };
  // Tile sizes: the array bounds the stationary/output dims; the streamed dim is free.
  const bool os = c.dataflow == Dataflow::OutputStationary;
  const bool is = c.dataflow == Dataflow::InputStationary;
  int64_t tk = os ? rng.uniform_int(1, c.K) : rng.uniform_int(1, std::min(c.K, c.rows));
  int64_t tm = os ? rng.uniform_int(1, std::min(c.M, c.rows)) : is ? rng.uniform_int(1, std::min(c.M, c.cols)) : c.M;
  int64_t tn = is ? c.N : rng.uniform_int(1, std::min(c.N, c.cols));
  c.k_tile = tk;
  for (int64_t m0 = 0; m0 < c.M; m0 += tm) {
    const int64_t mm = std::min(tm, c.M - m0);
    for (int64_t n0 = 0; n0 < c.N; n0 += tn) {
      const int64_t nn = std::min(tn, c.N - n0);
      // Accumulator tile: ws/os rows are m (nn values each); is rows are n (mm values each).
      const int64_t out_rows = is ? nn : mm, out_cols = is ? mm : nn;
      const int64_t acc_stride = out_cols * 4 + 4 * rng.uniform_int(0, 1);
      const int64_t acc_base = acc;
      acc += out_rows * acc_stride;
      std::string last_matmul_signals;
      for (int64_t k0 = 0; k0 < c.K; k0 += tk) {
        const int64_t kk = std::min(tk, c.K - k0);
        const bool first = k0 == 0, last = k0 + tk >= c.K;
        std::string a_ready = token("dma", "mxu"), b_ready = token("dma", "mxu");
        const int64_t a_base = ub, b_base = wb;
        if (os) {  // left operand: A^T rows (kk x mm), top: B rows (kk x nn)
          body += fmt::format("dma.load dst=ub[{}] src=A[{},{}] extent=[{},{}] src_step=[[0,1],[1,0]] signal={}\n",
                              a_base, m0, k0, kk, mm, a_ready);
          ub += kk * mm * e;
          body += fmt::format("dma.load dst=wb[{}] src=B[{},{}] extent=[{},{}] signal={}\n", b_base, k0, n0, kk, nn, b_ready);
          wb += kk * nn * e;
        } else if (is) {  // stationary: A tile (mm x kk) read transposed; stream: B^T rows (nn x kk)
          body += fmt::format("dma.load dst=ub[{}] src=A[{},{}] extent=[{},{}] signal={}\n", a_base, m0, k0, mm, kk, a_ready);
          ub += mm * kk * e;
          body += fmt::format("dma.load dst=wb[{}] src=B[{},{}] extent=[{},{}] src_step=[[0,1],[1,0]] signal={}\n",
                              b_base, k0, n0, nn, kk, b_ready);
          wb += nn * kk * e;
        } else {  // ws: stationary B tile (kk x nn); stream A rows (mm x kk)
          body += fmt::format("dma.load dst=ub[{}] src=A[{},{}] extent=[{},{}] signal={}\n", a_base, m0, k0, mm, kk, a_ready);
          ub += mm * kk * e;
          body += fmt::format("dma.load dst=wb[{}] src=B[{},{}] extent=[{},{}] signal={}\n", b_base, k0, n0, kk, nn, b_ready);
          wb += kk * nn * e;
        }
        std::string signals;
        if (last) {
          std::string to_dma = token("mxu", "dma"), to_vpu = token("mxu", "vpu");
          signals = fmt::format(" signal={},{}", to_dma, to_vpu);
          last_matmul_signals = to_dma + "," + to_vpu;
        }
        const char* accumulate = first ? "" : " accumulate=true";
        if (os) {
          body += fmt::format("mxu.matmul_os left=ub[{}] left_stride={} top=wb[{}] top_stride={} rows={} cols={} count={} "
                              "dst=acc[{}] dst_stride={}{} wait={},{}{}\n",
                              a_base, mm * e, b_base, nn * e, mm, nn, kk, acc_base, acc_stride, accumulate, a_ready, b_ready, signals);
        } else if (is) {
          body += fmt::format("mxu.load_stationary src=ub[{}] rows={} cols={} stride={} transpose=true wait={}\n",
                              a_base, kk, mm, kk * e, a_ready);
          // Split the stream in two matmuls sometimes (same tile, pipelined).
          int64_t split = rng.uniform_int(0, 1) ? rng.uniform_int(1, nn) : nn;
          body += fmt::format("mxu.matmul src=wb[{}] stride={} count={} dst=acc[{}] dst_stride={}{} wait={}{}\n", b_base,
                              kk * e, split, acc_base, acc_stride, accumulate, b_ready, split == nn ? signals : "");
          if (split < nn) {
            body += fmt::format("mxu.matmul src=wb[{}] stride={} count={} dst=acc[{}] dst_stride={}{}{}\n",
                                b_base + split * kk * e, kk * e, nn - split, acc_base + split * acc_stride, acc_stride,
                                accumulate, signals);
          }
        } else {
          body += fmt::format("mxu.load_stationary src=wb[{}] rows={} cols={} stride={} wait={}\n", b_base, kk, nn, nn * e, b_ready);
          int64_t split = rng.uniform_int(0, 1) ? rng.uniform_int(1, mm) : mm;
          body += fmt::format("mxu.matmul src=ub[{}] stride={} count={} dst=acc[{}] dst_stride={}{} wait={}{}\n", a_base,
                              kk * e, split, acc_base, acc_stride, accumulate, a_ready, split == mm ? signals : "");
          if (split < mm) {
            body += fmt::format("mxu.matmul src=ub[{}] stride={} count={} dst=acc[{}] dst_stride={}{}{}\n",
                                a_base + split * kk * e, kk * e, mm - split, acc_base + split * acc_stride, acc_stride,
                                accumulate, signals);
          }
        }
      }
      // Store C from the accumulators, and an epilogue on the VPU stored as Q.
      const std::string to_dma = last_matmul_signals.substr(0, last_matmul_signals.find(','));
      const std::string to_vpu = last_matmul_signals.substr(last_matmul_signals.find(',') + 1);
      const char* transpose_store = is ? " dst_step=[[0,1],[1,0]]" : "";
      body += fmt::format("dma.store src=acc[{}] dst=C[{},{}] extent=[{},{}]{} src_stride=[{},4] wait={}\n", acc_base, m0, n0,
                          out_rows, out_cols, transpose_store, acc_stride, to_dma);
      const std::string q_ready = token("vpu", "dma");
      const int64_t q_base = ub;
      const int64_t q_e = c.type == DType::Int8 ? 1 : 2;
      ub += out_rows * out_cols * q_e;
      if (c.type == DType::Int8) {
        body += fmt::format("vpu.requantize dst=ub[{}]:int8 src=acc[{}]:int32 rows={} cols={} src_stride={} multiplier={} shift={} "
                            "zero_point={} wait={} signal={}\n",
                            q_base, acc_base, out_rows, out_cols, acc_stride, rng.uniform_int(1, 1 << 14), rng.uniform_int(8, 20),
                            rng.uniform_int(-3, 3), to_vpu, q_ready);
      } else {
        body += fmt::format("vpu.copy dst=ub[{}]:bf16 src=acc[{}]:fp32 rows={} cols={} src_stride={} wait={} signal={}\n",
                            q_base, acc_base, out_rows, out_cols, acc_stride, to_vpu, q_ready);
      }
      body += fmt::format("dma.store src=ub[{}] dst=Q[{},{}] extent=[{},{}]{} wait={}\n", q_base, m0, n0, out_rows, out_cols,
                          transpose_store, q_ready);
    }
  }
  return decl + "\n" + body;
}

}  // namespace

RandomGemmCase random_gemm_case(RandomStream& rng) {
  RandomGemmCase c;
  c.dataflow = static_cast<Dataflow>(rng.uniform_int(0, 2));
  c.type = rng.uniform_int(0, 1) ? DType::Int8 : DType::BF16;
  c.rows = rng.uniform_int(1, 8);
  c.cols = rng.uniform_int(1, 8);
  if (rng.uniform_int(0, 9) == 0) {  // sometimes a bigger array
    c.rows = rng.uniform_int(9, 20);
    c.cols = rng.uniform_int(9, 20);
  }
  c.M = rng.uniform_int(1, 14);
  c.K = rng.uniform_int(1, 14);
  c.N = rng.uniform_int(1, 14);
  c.double_buffering = rng.uniform_int(0, 1);
  const char* dataflow = c.dataflow == Dataflow::WeightStationary ? "ws" : c.dataflow == Dataflow::OutputStationary ? "os" : "is";
  int64_t banks = rng.uniform_int(1, 4);
  c.arch_yaml = fmt::format(
      "name: property\n"
      "mxu: {{rows: {}, cols: {}, dataflow: {}, operand_type: {}, clock_mhz: 100, weight_double_buffering: {}}}\n"
      "unified_buffer: {{bytes: {}, banks: {}}}\n"
      "weight_buffer: {{bytes: {}, banks: {}}}\n"
      "accumulator: {{bytes: {}, banks: {}}}\n"
      "vpu: {{lanes: {}}}\n"
      "dram: {{bytes_per_cycle: {}, latency_cycles: {}, channels: {}}}\n",
      c.rows, c.cols, dataflow, c.type == DType::Int8 ? "int8" : "bf16", c.double_buffering ? "true" : "false",
      16384 * banks, banks, 16384 * banks, banks, 16384 * banks, banks, rng.uniform_int(1, 9),
      rng.uniform_int(1, 3) + 0.25 * static_cast<double>(rng.uniform_int(0, 3)), rng.uniform_int(0, 12), rng.uniform_int(1, 3));
  c.program = generate_program(rng, c);
  return c;
}

std::vector<uint8_t> expected_product(const RandomGemmCase& c, const MachineState& state) {
  std::vector<uint8_t> out(static_cast<size_t>(c.M * c.N * 4));
  for (int64_t m = 0; m < c.M; ++m) {
    for (int64_t n = 0; n < c.N; ++n) {
      uint32_t bits;
      if (c.type == DType::Int8) {
        uint32_t sum = 0;
        for (int64_t k = 0; k < c.K; ++k) {
          sum += static_cast<uint32_t>(static_cast<int32_t>(static_cast<int8_t>(state.dram[0][static_cast<size_t>(m * c.K + k)])) *
                                       static_cast<int8_t>(state.dram[1][static_cast<size_t>(k * c.N + n)]));
        }
        bits = sum;
      } else {
        // fp32: each k-tile's column sum starts from +0.0; tiles accumulate in order.
        float total = 0.0f;
        for (int64_t k0 = 0; k0 < c.K; k0 += c.k_tile) {
          float sum = 0.0f;
          for (int64_t k = k0; k < std::min(c.K, k0 + c.k_tile); ++k) {
            float a = static_cast<float>(load_element(DType::BF16, &state.dram[0][static_cast<size_t>((m * c.K + k) * 2)]));
            float b = static_cast<float>(load_element(DType::BF16, &state.dram[1][static_cast<size_t>((k * c.N + n) * 2)]));
            sum = sum + a * b;
          }
          total = k0 == 0 ? sum : total + sum;
        }
        bits = std::bit_cast<uint32_t>(total);
      }
      std::memcpy(&out[static_cast<size_t>((m * c.N + n) * 4)], &bits, 4);
    }
  }
  return out;
}

}  // namespace tpusim::test

// The tiled GEMM program for each dataflow; gemm_program.h describes the tilings.
#include "compiler/gemm_program.h"

#include <fmt/format.h>

#include "ir/diagnostics.h"

namespace tpusim {
namespace {

const SourceLocation kNowhere{"explain gemm", 0, 0, ""};

void require_fits(int64_t bytes, const BufferConfig& buffer, const char* buffer_name, const std::string& what,
                  const char* flags) {
  if (bytes <= buffer.bytes) return;
  throw Error(kNowhere, fmt::format("{} takes {} bytes, more than the {} holds ({}); choose a smaller {}, or a "
                                    "bigger machine (--set {}.bytes=...)",
                                    what, bytes, buffer_name, format_byte_size(buffer.bytes), flags, buffer_name));
}

// The tiles of a dimension of `size` cut into pieces of at most `piece`.
template <class F>
void for_each_piece(int64_t size, int64_t piece, F&& f) {
  for (int64_t start = 0; start < size; start += piece) f(start, std::min(piece, size - start));
}

}  // namespace

GemmProgram gemm_program(const GemmShape& shape, const ArchConfig& arch) {
  const auto [M, K, N] = shape;
  if (M <= 0 || K <= 0 || N <= 0) {
    throw Error(kNowhere, fmt::format("--m, --k and --n must be positive (got {}, {}, {})", M, K, N));
  }
  constexpr int64_t kLargest = 4096;  // a teaching size; also keeps every product below in range
  if (M > kLargest || K > kLargest || N > kLargest) {
    throw Error(kNowhere, fmt::format("--m, --k and --n are at most {} here (got {}, {}, {}): explain draws every "
                                      "PE of every cycle",
                                      kLargest, M, K, N));
  }
  const Dataflow dataflow = arch.mxu.dataflow;
  const DType operand = arch.mxu.operand_type;
  const int64_t e = dtype_size(operand);
  const int64_t R = arch.mxu.rows, Cols = arch.mxu.cols;
  const std::string type(dtype_name(operand)), acc_type(dtype_name(accumulator_type(operand)));
  const bool os = dataflow == Dataflow::OutputStationary, is = dataflow == Dataflow::InputStationary;

  require_fits(M * K * e, arch.unified_buffer, "unified_buffer", fmt::format("A ({} x {} {})", M, K, type), "--m or --k");
  require_fits(K * N * e, arch.weight_buffer, "weight_buffer", fmt::format("B ({} x {} {})", K, N, type), "--k or --n");
  require_fits(M * N * 4, arch.accumulator, "accumulator", fmt::format("C ({} x {} {})", M, N, acc_type), "--m or --n");

  GemmProgram out;
  std::string& t = out.text;
  t += fmt::format("# C[{m},{n}] = A[{m},{k}] . B[{k},{n}] on a {r}x{c} {df} {type} array (tpusim explain gemm).\n", fmt::arg("m", M),
                   fmt::arg("k", K), fmt::arg("n", N), fmt::arg("r", R), fmt::arg("c", Cols),
                   fmt::arg("df", dataflow_name(dataflow)), fmt::arg("type", type));
  if (os) {
    t += "# os: each PE keeps one C[m][n]; column k of A enters from the left, row k of B from the\n"
         "# top, and the two meet in the PE. A is held transposed (ub row k = column k of A).\n";
  } else if (is) {
    t += "# is: the array holds a tile of A (K rows x M columns, read transposed); the columns of B\n"
         "# stream through it (wb row n = column n of B) and C leaves transposed (acc row n = C^T[n]).\n";
  } else {
    t += "# ws: the array holds a tile of B (K rows x N columns); the rows of A stream through it.\n";
  }
  t += fmt::format("tensor A {} [{},{}] input\ntensor B {} [{},{}] input\ntensor C {} [{},{}] output\n\n", type, M, K,
                   type, K, N, acc_type, M, N);
  t += "token a_ready dma -> mxu\ntoken b_ready dma -> mxu\ntoken c_ready mxu -> dma\n\n";
  const char* transposed = " src_step=[[0,1],[1,0]]";
  t += fmt::format("dma.load dst=ub[0] src=A[0,0] extent=[{},{}]{} signal=a_ready label=\"load A\"\n", os ? K : M,
                   os ? M : K, os ? transposed : "");
  t += fmt::format("dma.load dst=wb[0] src=B[0,0] extent=[{},{}]{} signal=b_ready label=\"load B\"\n", is ? N : K,
                   is ? K : N, is ? transposed : "");

  bool first = true;
  size_t remaining = 0;
  // Tiles first (to know the last one), then the instructions.
  if (os) {
    for_each_piece(M, R, [&](int64_t m0, int64_t mm) {
      for_each_piece(N, Cols, [&](int64_t n0, int64_t nn) { out.tiles.push_back({m0, mm, 0, K, n0, nn}); });
    });
  } else if (is) {
    for_each_piece(M, Cols, [&](int64_t m0, int64_t mm) {
      for_each_piece(K, R, [&](int64_t k0, int64_t kk) { out.tiles.push_back({m0, mm, k0, kk, 0, N}); });
    });
  } else {
    for_each_piece(N, Cols, [&](int64_t n0, int64_t nn) {
      for_each_piece(K, R, [&](int64_t k0, int64_t kk) { out.tiles.push_back({0, M, k0, kk, n0, nn}); });
    });
  }
  remaining = out.tiles.size();
  for (const GemmTile& tile : out.tiles) {
    const bool last = --remaining == 0;
    const std::string signal = last ? " signal=c_ready" : "";
    const std::string label = fmt::format(" label=\"tile m{}-{} k{}-{} n{}-{}\"", tile.m0, tile.m0 + tile.m - 1, tile.k0,
                                          tile.k0 + tile.k - 1, tile.n0, tile.n0 + tile.n - 1);
    if (os) {
      t += fmt::format("mxu.matmul_os left=ub[{}] left_stride={} top=wb[{}] top_stride={} rows={} cols={} count={} "
                       "dst=acc[{}] dst_stride={}{}{}{}\n",
                       tile.m0 * e, M * e, tile.n0 * e, N * e, tile.m, tile.n, K, (tile.m0 * N + tile.n0) * 4, N * 4,
                       first ? " wait=a_ready,b_ready" : "", signal, label);
    } else if (is) {
      const bool accumulate = tile.k0 > 0;
      t += fmt::format("mxu.load_stationary src=ub[{}] rows={} cols={} stride={} transpose=true{}{}\n",
                       (tile.m0 * K + tile.k0) * e, tile.k, tile.m, K * e, first ? " wait=a_ready" : "", label);
      t += fmt::format("mxu.matmul src=wb[{}] stride={} count={} dst=acc[{}] dst_stride={}{}{}{}\n", tile.k0 * e, K * e,
                       N, tile.m0 * 4, M * 4, accumulate ? " accumulate=true" : "", first ? " wait=b_ready" : "",
                       signal + label);
    } else {
      const bool accumulate = tile.k0 > 0;
      t += fmt::format("mxu.load_stationary src=wb[{}] rows={} cols={} stride={}{}{}\n", (tile.k0 * N + tile.n0) * e,
                       tile.k, tile.n, N * e, first ? " wait=b_ready" : "", label);
      t += fmt::format("mxu.matmul src=ub[{}] stride={} count={} dst=acc[{}] dst_stride={}{}{}{}\n", tile.k0 * e, K * e,
                       M, tile.n0 * 4, N * 4, accumulate ? " accumulate=true" : "", first ? " wait=a_ready" : "",
                       signal + label);
    }
    first = false;
  }
  if (is) {
    t += fmt::format("dma.store src=acc[0] dst=C[0,0] extent=[{},{}] dst_step=[[0,1],[1,0]] wait=c_ready label=\"store "
                     "C\"\n",
                     N, M);
  } else {
    t += fmt::format("dma.store src=acc[0] dst=C[0,0] extent=[{},{}] wait=c_ready label=\"store C\"\n", M, N);
  }
  out.program = parse_program(t, "explain-gemm.tpu");
  verify_program_or_throw(out.program, target_limits(arch));
  return out;
}

}  // namespace tpusim

// The graph's float ops evaluated in double, with no intermediate rounding, and bounds on how
// far an fp32 evaluation of them can be from that. `--check` uses both: the bounds are the
// per-kernel float tolerance, and the double values are the end-to-end reference of a float
// model (compiler/model_run.h).
//
// Each op means what compiler/reference.h says, evaluated in exact arithmetic (double, whose
// own rounding is 2^29 times finer than fp32's). A value's `bound[i]` is a bound on
// |v - values[i]| for the fp32 result v of any evaluation that follows the arithmetic contract:
// the reference's and the lowering's alike (sums in any order or tree, x / s as x * (1/s),
// flash attention's running max and rescaling, probabilities rounded to bf16 before P · v).
// It is the bound before v is stored in the value's type; inputs of an op are taken as stored.
// The derivation of every op's bound is in docs/numerics.md.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "simulator/npy.h"

namespace tpusim {

struct Fp64Tensor {
  std::vector<double> values;  // row-major in the value's shape
  std::vector<double> bound;   // with bounds: per element, as above (empty otherwise)
  // False when the op only selects or moves stored values (relu, max, reshape, ...): the
  // result needs no rounding of its own.
  bool rounds = true;
  // With bounds, for a result rounded to bf16: what the ops reading it take. Rounding is
  // monotone, so every evaluation stores one of the bf16 values from rnd(x - B) to rnd(x + B);
  // `stored` is their midpoint and `stored_bound` half their spread (0 when all round alike).
  std::vector<double> stored, stored_bound;
};

struct Fp64Options {
  bool bounds = false;  // also compute Fp64Tensor::bound
  // Attention ops by name: into how many blocks of keys a query row's softmax is split (flash
  // attention rescales its running sums once per block). Missing: 1.
  std::map<std::string, int64_t> attention_key_blocks;
};

// The graph's outputs in double, indexed by value index (other values are released once their
// last reader has run and come back empty). `given` as for run_reference (inputs and weights
// by value index). Expects a graph run_reference accepts (it checks the shapes and types). Ops
// on integers are left out, and their values come back empty: no float op reads one.
std::vector<Fp64Tensor> run_reference_fp64(const Graph& graph, const std::vector<std::optional<HostTensor>>& given,
                                           const Fp64Options& options = {});

// Whether every op of the graph computes on floats (what run_reference_fp64 takes).
bool is_float_graph(const Graph& graph);

// The per-element tolerance for comparing two fp32 evaluations of a value of `type` that are
// each within `exact.bound` (B) of exact.values (x) and then stored in `type`:
//   bf16: both store one of the bf16 values from rnd(x - B) to rnd(x + B) (rounding is
//     monotone), so |got - want| <= rnd(x + B) - rnd(x - B): 0 where the interval holds no
//     rounding boundary (nearly everywhere: B is far below a bf16 ulp), one ulp where it does;
//   fp32 (B includes fp32's rounding): 2 B (1 + 2^-20) + 2^-133;
//   an op that does not round (relu, max, data movement): 2 B (1 + 2^-20), zero on exact
//     inputs.
std::vector<double> float_tolerance(const Fp64Tensor& exact, DType type);

// The end-to-end bound of a float output (docs/numerics.md), on the path from the graph's
// inputs to `value` where it is largest: relative_rms = bf16_roundings * 2^-8 +
// fp32_roundings * 2^-24. bf16_roundings counts the ops whose result is stored as bf16 and is
// not exact (conv, linear, matmul, add, mul, gelu, the average pools, softmax, layernorm,
// attention), and once more every attention (its probabilities are rounded to bf16 for P . v).
// An op whose result is stored as fp32 adds the fp32 roundings an element of it goes through
// instead: its reduction length (both sums for layernorm and attention) plus 16 for its other
// steps, or 1 for add and mul. relu, clip, max pooling and data movement add nothing.
struct EndToEndBound {
  int64_t bf16_roundings = 0;
  int64_t fp32_roundings = 0;
  double relative_rms = 0;
};
EndToEndBound end_to_end_bound(const Graph& graph, int value);

}  // namespace tpusim

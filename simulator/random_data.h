// Seeded random tensor data that is identical on every platform and compiler: the generator
// and the distributions are written out here rather than taken from <random>, whose
// distributions are implementation-defined. Tests and examples rely on these exact bytes.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "ir/dtype.h"
#include "simulator/npy.h"

namespace tpusim {

// xoshiro256** (Blackman and Vigna), its 256-bit state filled from the seed by splitmix64 as
// the authors recommend. Fast, small, and its output is fixed by the algorithm alone.
class RandomStream {
 public:
  explicit RandomStream(uint64_t seed);

  uint64_t next();  // 64 uniformly random bits

  // Uniform in [low, high] (inclusive, low <= high), without modulo bias: draws that would
  // favour small values are rejected and redrawn.
  int64_t uniform_int(int64_t low, int64_t high);

  // Uniform on the grid {k * 2^-23 : k = -2^23 .. 2^23 - 1}, i.e. [-1, 1) in steps of 2^-23.
  // Every such value is exact in float32, so no rounding happens here. One draw.
  float uniform_signed_unit();

 private:
  uint64_t state_[4];
};

// A tensor of `shape` filled in row-major order from RandomStream(seed), one element after
// another:
//   int8:  uniform in [-128, 127] (the top 8 bits of one draw)
//   int32: uniform in [-2^20, 2^20] (uniform_int; small enough that sums of many products
//          stay far from overflow)
//   fp32:  uniform_signed_unit(): uniform in [-1, 1) in steps of 2^-23
//   bf16:  uniform_signed_unit() rounded to nearest-even bf16 (float_to_bf16), so values in
//          [-1, 1]: draws just below 1 round up to 1.0
HostTensor random_tensor(DType dtype, std::vector<int64_t> shape, uint64_t seed);

// A seed for the tensor called `name` in a run seeded with `base_seed`: the FNV-1a hash of the
// name mixed with the base seed through splitmix64. Stable across versions and platforms, so
// each named tensor gets its own stream and adding a tensor does not change the others.
uint64_t seed_for(std::string_view name, uint64_t base_seed);

}  // namespace tpusim

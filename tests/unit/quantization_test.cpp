// The int8 rescale arithmetic shared by the lowering and the reference (compiler/quantization.h)
// held to exact arithmetic on many seeded, non-power-of-two factors: quantize_multiplier's
// (multiplier, shift) against the real factor's 31-bit mantissa in integers, requantize against
// an __int128 round-half-up-and-clamp and against round(x * real) in double, and the VPU's
// vpu.requantize instruction against the same.
#include <catch2/catch.hpp>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>

#include <fmt/format.h>

#include "compiler/quantization.h"
#include "ir/program.h"
#include "simulator/arch.h"
#include "simulator/random_data.h"
#include "simulator/semantics.h"
#include "simulator/simulator.h"

using namespace tpusim;

namespace {

using Int128 = __int128;

// A real factor M * 2^(e - 52) with M a random 53-bit integer in [2^52, 2^53) (so it lies in
// [2^e, 2^(e+1)) and is not a power of two unless M = 2^52, which the draw avoids).
struct Factor {
  int64_t mantissa;
  int exponent;
  double value() const { return std::ldexp(static_cast<double>(mantissa), exponent - 52); }
};

Factor random_factor(RandomStream& rng, int low, int high) {
  const int64_t mantissa = (int64_t{1} << 52) + rng.uniform_int(1, (int64_t{1} << 52) - 1);
  return {mantissa, static_cast<int>(rng.uniform_int(low, high))};
}

// floor(n / 2^s) by integer division, not by a shift.
Int128 floor_divide(Int128 n, int64_t s) {
  const Int128 d = Int128{1} << s;
  Int128 q = n / d;
  if (n % d != 0 && n < 0) --q;
  return q;
}

// What requantize must compute: floor((x m + 2^(s-1)) / 2^s) (round half up), clamped to int8.
int64_t exact_requantize(int64_t x, const Requantization& r) {
  const Int128 product = Int128{x} * r.multiplier;
  const Int128 rounded = r.shift == 0 ? product : floor_divide(product + (Int128{1} << (r.shift - 1)), r.shift);
  return static_cast<int64_t>(std::clamp<Int128>(rounded, -128, 127));
}

}  // namespace

TEST_CASE("quantize_multiplier: within half a unit of the real factor's 31-bit mantissa", "[quantization]") {
  RandomStream rng(31);
  int carried = 0;
  for (int i = 0; i < 50000; ++i) {
    // Factors in [2^-31, 2^31): shifts 0 .. 61, nothing clamped.
    const Factor f = random_factor(rng, -31, 30);
    const Requantization r = quantize_multiplier(f.value());
    INFO(fmt::format("real {} = {} * 2^{}: multiplier {}, shift {}", f.value(), f.mantissa, f.exponent - 52, r.multiplier,
                     r.shift));
    // The unrounded 31-bit mantissa is F = real * 2^(30 - e) = M / 2^22.
    const int64_t shift = 30 - f.exponent;
    REQUIRE(r.multiplier >= int64_t{1} << 30);
    REQUIRE(r.multiplier < int64_t{1} << 31);
    // Rounding may carry into the next power of two: 2^31 / 2^shift = 2^30 / 2^(shift - 1).
    REQUIRE((r.shift == shift || (r.shift == shift - 1 && r.multiplier == int64_t{1} << 30)));
    carried += r.shift != shift;
    // |multiplier * 2^(shift - r.shift) - M / 2^22| <= 1/2, times 2^22, in integers.
    const Int128 scaled = (Int128{r.multiplier} << (shift - r.shift)) << 22;
    const Int128 difference = scaled - f.mantissa;
    REQUIRE((difference <= (Int128{1} << 21) && difference >= -(Int128{1} << 21)));
  }
  CHECK(carried < 50);  // a carry needs M within 2^21 of 2^53: rare

  // Factors whose mantissa is all ones below the point carry: 2^31 - 1/2 rounds to 2^31.
  const Requantization carry = quantize_multiplier(std::ldexp((int64_t{1} << 53) - 1, -53));
  CHECK(carry.multiplier == int64_t{1} << 30);
  CHECK(carry.shift == 30);
}

TEST_CASE("quantize_multiplier: huge factors saturate, tiny ones keep the shift at 62", "[quantization]") {
  RandomStream rng(32);
  for (int i = 0; i < 2000; ++i) {
    const Factor huge = random_factor(rng, 31, 60);
    const Requantization h = quantize_multiplier(huge.value());
    CHECK(h.shift == 0);
    CHECK(h.multiplier == (int64_t{1} << 31) - 1);

    // Below 2^-32 the shift stays 62 and the multiplier is real * 2^62 to within 1 (the halvings
    // round), and at least 1.
    const Factor tiny = random_factor(rng, -60, -32);
    const Requantization t = quantize_multiplier(tiny.value());
    INFO(fmt::format("real {}: multiplier {}, shift {}", tiny.value(), t.multiplier, t.shift));
    CHECK(t.shift == 62);
    CHECK(t.multiplier >= 1);
    // real * 2^62 = M * 2^(e + 10) = M / 2^-(e + 10).
    const int64_t down = -(tiny.exponent + 10);
    const Int128 difference = (Int128{t.multiplier} << down) - tiny.mantissa;
    CHECK((difference <= (Int128{1} << down) && difference >= -(Int128{1} << down)));
  }
}

TEST_CASE("requantize: exact round-half-up and clamp, within 1 of round(x * real)", "[quantization]") {
  RandomStream rng(33);
  int64_t inside = 0;
  for (int i = 0; i < 2000; ++i) {
    const Factor f = random_factor(rng, -24, 3);
    const double real = f.value();
    const Requantization r = quantize_multiplier(real);
    for (int j = 0; j < 50; ++j) {
      // Mostly accumulators whose result lands inside int8 (and near .5, where rounding
      // matters), some anywhere in int32.
      int64_t x = 0;
      if (j % 5 == 0) {
        x = rng.uniform_int(INT32_MIN, INT32_MAX);
      } else {
        const double target = static_cast<double>(rng.uniform_int(-140, 140)) + (j % 5 == 1 ? 0.5 : 0.0);
        x = std::clamp<int64_t>(std::llround(target / real), INT32_MIN, INT32_MAX);
      }
      INFO(fmt::format("x {}, real {}, multiplier {}, shift {}", x, real, r.multiplier, r.shift));
      const int64_t got = requantize(x, r);
      REQUIRE(got == exact_requantize(x, r));
      const double nearest = std::clamp(std::nearbyint(static_cast<double>(x) * real), -128.0, 127.0);
      REQUIRE(std::abs(static_cast<double>(got) - nearest) <= 1);
      if (std::abs(static_cast<double>(x) * real) < 127) ++inside;
    }
  }
  CHECK(inside > 50000);
  // Ties round up (toward +inf), for negative values as well.
  CHECK(requantize(-3, quantize_multiplier(0.5)) == -1);
  CHECK(requantize(-5, {3, 1}) == -7);  // -15 / 2 = -7.5 -> -7
  CHECK(requantize(5, {3, 1}) == 8);    // 7.5 -> 8
}

TEST_CASE("vpu.requantize computes the same exact rounding, with a zero point", "[quantization][simulator]") {
  // 64 int32 accumulators through vpu.requantize on the simulator, for many multipliers and
  // shifts; the zero point is added after rounding and before the clamp.
  const ArchConfig arch = parse_arch_yaml(R"(name: requantize
mxu: {rows: 4, cols: 4, dataflow: ws, operand_type: int8, clock_mhz: 100}
unified_buffer: {bytes: 1KiB}
weight_buffer: {bytes: 256}
accumulator: {bytes: 1KiB}
vpu: {lanes: 4}
dram: {bytes_per_cycle: 8, latency_cycles: 2}
)",
                                          "requantize.yaml");
  RandomStream rng(34);
  for (int i = 0; i < 200; ++i) {
    const Requantization r = quantize_multiplier(random_factor(rng, -20, 1).value());
    const int64_t zero_point = rng.uniform_int(-5, 5);
    const std::string text = fmt::format(R"(tensor A int32 [1,64] input
tensor Q int8 [1,64] output
token loaded dma -> vpu
token done vpu -> dma
dma.load dst=acc[0] src=A[0,0] extent=[1,64] signal=loaded
vpu.requantize dst=ub[0]:int8 src=acc[0]:int32 rows=1 cols=64 multiplier={} shift={} zero_point={} wait=loaded signal=done
dma.store src=ub[0] dst=Q[0,0] extent=[1,64] wait=done
)",
                                         r.multiplier, r.shift, zero_point);
    const Program program = parse_program(text, "requantize.tpu");
    MachineState state = make_machine_state(program, target_limits(arch));
    std::vector<int64_t> x(64);
    for (size_t e = 0; e < x.size(); ++e) {
      x[e] = e % 4 == 0 ? rng.uniform_int(INT32_MIN, INT32_MAX)
                        : std::llround(static_cast<double>(rng.uniform_int(-130, 130)) * std::ldexp(1.0, static_cast<int>(r.shift)) /
                                       static_cast<double>(r.multiplier));
      x[e] = std::clamp<int64_t>(x[e], INT32_MIN, INT32_MAX);
      store_element(DType::Int32, &state.dram[0][e * 4], static_cast<double>(x[e]));
    }
    simulate_program(program, arch, state);
    for (size_t e = 0; e < x.size(); ++e) {
      const Int128 product = Int128{x[e]} * r.multiplier;
      const Int128 rounded = r.shift == 0 ? product : floor_divide(product + (Int128{1} << (r.shift - 1)), r.shift);
      const int64_t want = static_cast<int64_t>(std::clamp<Int128>(rounded + zero_point, -128, 127));
      INFO(fmt::format("x {}, multiplier {}, shift {}, zero point {}", x[e], r.multiplier, r.shift, zero_point));
      REQUIRE(static_cast<int8_t>(state.dram[1][e]) == want);
    }
  }
}

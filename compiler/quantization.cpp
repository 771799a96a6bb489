#include "compiler/quantization.h"

#include <algorithm>
#include <cmath>

#include "ir/diagnostics.h"

namespace tpusim {

Requantization quantize_multiplier(double real) {
  TPUSIM_CHECK(real > 0 && std::isfinite(real), "rescale factors must be positive and finite");
  // real = fraction * 2^exponent with fraction in [0.5, 1).
  int exponent = 0;
  double fraction = std::frexp(real, &exponent);
  int64_t multiplier = static_cast<int64_t>(std::llround(fraction * static_cast<double>(int64_t{1} << 31)));
  if (multiplier == (int64_t{1} << 31)) {  // rounding carried into the next power of two
    multiplier /= 2;
    ++exponent;
  }
  int64_t shift = 31 - exponent;
  // Keep the shift representable; tiny factors lose precision, huge ones saturate anyway.
  while (shift > 62) {
    multiplier = (multiplier + 1) / 2;
    --shift;
  }
  while (shift < 0) {
    multiplier = std::min<int64_t>(multiplier * 2, (int64_t{1} << 31) - 1);
    ++shift;
  }
  return {std::max<int64_t>(multiplier, 1), shift};
}

int8_t requantize(int64_t accumulator, const Requantization& r) {
  int64_t product = accumulator * r.multiplier;
  int64_t rounded = r.shift == 0 ? product : (product + (int64_t{1} << (r.shift - 1))) >> r.shift;
  return static_cast<int8_t>(std::clamp<int64_t>(rounded, -128, 127));
}

int64_t add_multiplier(double input_scale, double output_scale) {
  return std::llround(input_scale / output_scale * static_cast<double>(int64_t{1} << kAddShift));
}

int8_t quantize_bound(double bound, double scale) {
  return static_cast<int8_t>(std::clamp<double>(std::nearbyint(bound / scale), -128, 127));
}

}  // namespace tpusim

// int8 quantization arithmetic shared by the reference implementation and the lowering, so
// both produce the same bits. Values are symmetric: real = scale * q, zero point 0.
//
// A real rescale factor r > 0 is applied as an integer multiplier and a right shift,
// r ~= multiplier / 2^shift with multiplier in [2^30, 2^31) when possible; the VPU's
// `requantize` instruction computes clamp(((x * multiplier + 2^(shift-1)) >> shift), -128, 127).
#pragma once

#include <cstdint>

namespace tpusim {

struct Requantization {
  int64_t multiplier = 1;
  int64_t shift = 0;
};

// The (multiplier, shift) closest to `real` (> 0); shift is kept within [0, 62].
Requantization quantize_multiplier(double real);

// What vpu.requantize computes for one element (zero point 0).
int8_t requantize(int64_t accumulator, const Requantization& r);

// Elementwise int8 add of two tensors with different scales: both are brought to the output
// scale with a shared shift of kAddShift bits, added in int32 and requantized:
//   y = requantize(a * ma + b * mb, {1, kAddShift}),  ma = round(sa / sy * 2^kAddShift) ...
constexpr int64_t kAddShift = 16;
int64_t add_multiplier(double input_scale, double output_scale);  // round(in/out * 2^kAddShift)

// An int8 clip bound: round(bound / scale), saturated to int8.
int8_t quantize_bound(double bound, double scale);

}  // namespace tpusim

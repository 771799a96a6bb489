// Element types that flow through tpusim: the MXU's operand types (int8, bf16), its
// accumulator types (int32, fp32), and conversions between them with documented rounding.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace tpusim {

enum class DType : uint8_t { Int8, Int32, BF16, FP32 };

constexpr int dtype_size(DType t) {
  switch (t) {
    case DType::Int8: return 1;
    case DType::BF16: return 2;
    case DType::Int32:
    case DType::FP32: return 4;
  }
  return 0;
}

std::string_view dtype_name(DType t);                      // "int8", "int32", "bf16", "fp32"
std::optional<DType> parse_dtype(std::string_view name);   // inverse of dtype_name

// The accumulator type the MXU produces for an operand type: int8 -> int32, bf16 -> fp32.
constexpr DType accumulator_type(DType operand) {
  return operand == DType::Int8 ? DType::Int32 : DType::FP32;
}
constexpr bool is_float(DType t) { return t == DType::BF16 || t == DType::FP32; }

// bfloat16 is the upper half of an IEEE float32. Conversion from float rounds to nearest,
// ties to even; NaN stays a (quiet) NaN.
inline uint16_t float_to_bf16(float value) {
  uint32_t bits = std::bit_cast<uint32_t>(value);
  if (std::isnan(value)) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}
inline float bf16_to_float(uint16_t value) {
  return std::bit_cast<float>(static_cast<uint32_t>(value) << 16);
}

// Loads/stores one element of type `t` as a double (exact for every value of every type).
double load_element(DType t, const uint8_t* p);
// Stores rounding to nearest even and saturating integers (NaN stores as 0 in integer types).
void store_element(DType t, uint8_t* p, double value);

}  // namespace tpusim

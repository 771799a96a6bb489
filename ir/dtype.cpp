#include "ir/dtype.h"

#include <algorithm>

namespace tpusim {

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::Int8: return "int8";
    case DType::Int32: return "int32";
    case DType::BF16: return "bf16";
    case DType::FP32: return "fp32";
  }
  return "?";
}

std::optional<DType> parse_dtype(std::string_view name) {
  if (name == "int8") return DType::Int8;
  if (name == "int32") return DType::Int32;
  if (name == "bf16") return DType::BF16;
  if (name == "fp32") return DType::FP32;
  return std::nullopt;
}

double load_element(DType t, const uint8_t* p) {
  switch (t) {
    case DType::Int8: return static_cast<int8_t>(*p);
    case DType::Int32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::BF16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return bf16_to_float(v);
    }
    case DType::FP32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
  }
  return 0;
}

void store_element(DType t, uint8_t* p, double value) {
  switch (t) {
    case DType::Int8: {
      if (std::isnan(value)) value = 0;  // NaN has no integer value; define it as 0
      double r = std::nearbyint(std::clamp(value, -128.0, 127.0));
      *p = static_cast<uint8_t>(static_cast<int8_t>(r));
      return;
    }
    case DType::Int32: {
      if (std::isnan(value)) value = 0;
      double r = std::nearbyint(std::clamp(value, -2147483648.0, 2147483647.0));
      int32_t v = static_cast<int32_t>(r);
      std::memcpy(p, &v, 4);
      return;
    }
    case DType::BF16: {
      uint16_t v = float_to_bf16(static_cast<float>(value));
      std::memcpy(p, &v, 2);
      return;
    }
    case DType::FP32: {
      float v = static_cast<float>(value);
      std::memcpy(p, &v, 4);
      return;
    }
  }
}

}  // namespace tpusim

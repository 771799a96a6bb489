#include <catch2/catch.hpp>

#include <limits>

#include "ir/dtype.h"

using namespace tpusim;

TEST_CASE("dtype names round-trip and sizes match", "[dtype]") {
  for (DType t : {DType::Int8, DType::Int32, DType::BF16, DType::FP32}) {
    auto parsed = parse_dtype(dtype_name(t));
    REQUIRE(parsed.has_value());
    CHECK(*parsed == t);
  }
  CHECK(!parse_dtype("int4").has_value());
  CHECK(dtype_size(DType::Int8) == 1);
  CHECK(dtype_size(DType::BF16) == 2);
  CHECK(dtype_size(DType::Int32) == 4);
  CHECK(accumulator_type(DType::Int8) == DType::Int32);
  CHECK(accumulator_type(DType::BF16) == DType::FP32);
}

TEST_CASE("bf16 rounds to nearest even", "[dtype]") {
  CHECK(bf16_to_float(float_to_bf16(1.0f)) == 1.0f);
  // 1 + 2^-8 is exactly half way between two bf16 values (1 and 1 + 2^-7): ties to even -> 1.
  CHECK(bf16_to_float(float_to_bf16(1.0f + 1.0f / 256)) == 1.0f);
  // 1 + 3*2^-8 is half way between 1+2^-7 and 1+2^-6: ties to even -> 1 + 2^-6.
  CHECK(bf16_to_float(float_to_bf16(1.0f + 3.0f / 256)) == 1.0f + 1.0f / 64);
  CHECK(bf16_to_float(float_to_bf16(-2.5f)) == -2.5f);
  CHECK(std::isnan(bf16_to_float(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  CHECK(std::isinf(bf16_to_float(float_to_bf16(std::numeric_limits<float>::infinity()))));
}

TEST_CASE("store_element saturates integers and load_element reads them back", "[dtype]") {
  uint8_t bytes[4];
  store_element(DType::Int8, bytes, 300);
  CHECK(load_element(DType::Int8, bytes) == 127);
  store_element(DType::Int8, bytes, -300);
  CHECK(load_element(DType::Int8, bytes) == -128);
  store_element(DType::Int32, bytes, -123456);
  CHECK(load_element(DType::Int32, bytes) == -123456);
  store_element(DType::FP32, bytes, 0.5);
  CHECK(load_element(DType::FP32, bytes) == 0.5);
  store_element(DType::BF16, bytes, 3.0);
  CHECK(load_element(DType::BF16, bytes) == 3.0);
}

#include "ir/sizes.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace tpusim {

std::optional<int64_t> checked_add(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) return std::nullopt;
  return sum;
}

std::optional<int64_t> checked_mul(int64_t a, int64_t b) {
  int64_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) return std::nullopt;
  return product;
}

std::optional<int64_t> checked_product(std::span<const int64_t> factors) {
  int64_t product = 1;
  for (int64_t f : factors) {
    if (__builtin_mul_overflow(product, f, &product)) return std::nullopt;
  }
  return product;
}

std::optional<int64_t> checked_element_count(std::span<const int64_t> shape) {
  for (int64_t dim : shape) {
    if (dim < 0) return std::nullopt;
    if (dim == 0) return 0;  // a zero dimension empties the tensor whatever the others are
  }
  int64_t count = 1;
  for (int64_t dim : shape) {
    if (dim > kMaxTensorElements / count) return std::nullopt;
    count *= dim;
  }
  return count;
}

int64_t multiply_or_fail(int64_t a, int64_t b, const SourceLocation& where, std::string_view what) {
  std::optional<int64_t> product = checked_mul(a, b);
  if (!product) throw Error(where, fmt::format("{} is too large: {} x {} does not fit in 64 bits", what, a, b));
  return *product;
}

int64_t add_or_fail(int64_t a, int64_t b, const SourceLocation& where, std::string_view what) {
  std::optional<int64_t> sum = checked_add(a, b);
  if (!sum) throw Error(where, fmt::format("{} is too large: {} + {} does not fit in 64 bits", what, a, b));
  return *sum;
}

int64_t element_count_or_fail(std::span<const int64_t> shape, const SourceLocation& where, std::string_view tensor) {
  std::optional<int64_t> count = checked_element_count(shape);
  if (!count) {
    throw Error(where, fmt::format("tensor '{}' of shape {} has more than 2^48 elements, the most one tensor may "
                                   "have; use smaller dimensions",
                                   tensor, shape_text(shape)));
  }
  return *count;
}

std::string shape_text(std::span<const int64_t> shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

std::string bytes_text(int64_t bytes) {
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return fmt::format("{} byte{}", bytes, bytes == 1 ? "" : "s");
  double value = static_cast<double>(bytes);
  int unit = -1;
  while (value >= 1024 && unit < 5) {
    value /= 1024;
    ++unit;
  }
  std::string number = fmt::format("{:.3g}", value);
  return number + " " + kUnits[unit];
}

std::vector<int64_t> unravel(int64_t flat, std::span<const int64_t> shape) {
  std::vector<int64_t> index(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    index[d] = flat % shape[d];
    flat /= shape[d];
  }
  return index;
}

}  // namespace tpusim

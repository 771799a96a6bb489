// Sizes computed from user input (shapes, element counts, address ranges, tile and loop counts)
// in checked 64-bit arithmetic: an overflow is reported by the caller as an error naming what
// overflowed, never wrapped or left as undefined behaviour. Also the size limits every reader
// of user input applies (docs/limits.md).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>
#include <string>
#include <string_view>

#include "ir/diagnostics.h"

namespace tpusim {

// The largest tensor dimension, kernel size, stride, dilation, padding, channel, feature or
// head count tpusim accepts: 2^31 - 1. A product of two such numbers cannot overflow int64.
constexpr int64_t kMaxDimension = (int64_t{1} << 31) - 1;
// The most elements one tensor may have (2^48), so that its byte size and every offset into it
// stay far from overflow.
constexpr int64_t kMaxTensorElements = int64_t{1} << 48;

std::optional<int64_t> checked_add(int64_t a, int64_t b);
std::optional<int64_t> checked_mul(int64_t a, int64_t b);
// The product of `factors` (1 for none), nullopt when it overflows int64.
std::optional<int64_t> checked_product(std::span<const int64_t> factors);
// The elements of a tensor of `shape` (1 for a 0-D tensor): nullopt when a dimension is
// negative or the count is more than kMaxTensorElements.
std::optional<int64_t> checked_element_count(std::span<const int64_t> shape);

// a * b, or an error at `where` saying that `what` is too large.
int64_t multiply_or_fail(int64_t a, int64_t b, const SourceLocation& where, std::string_view what);
int64_t add_or_fail(int64_t a, int64_t b, const SourceLocation& where, std::string_view what);
// The element count of `shape` (see checked_element_count), or an error at `where` naming the
// tensor: "tensor 'x' of shape [..] has more than 2^48 elements (...)".
int64_t element_count_or_fail(std::span<const int64_t> shape, const SourceLocation& where, std::string_view tensor);

// "[1, 3, 224, 224]".
std::string shape_text(std::span<const int64_t> shape);

// The multi-index of flat (row-major) position `flat` in `shape`.
std::vector<int64_t> unravel(int64_t flat, std::span<const int64_t> shape);
// A byte count for people: "512 bytes", "4 KiB", "1.5 GiB" (binary units, up to 3 digits).
std::string bytes_text(int64_t bytes);

}  // namespace tpusim

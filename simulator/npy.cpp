#include "simulator/npy.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "ir/diagnostics.h"
#include "ir/sizes.h"

namespace tpusim {

namespace {

// The format, as numpy/lib/format.py defines it:
//   magic "\x93NUMPY", major and minor version bytes, a little-endian header length
//   (uint16 in 1.0, uint32 in 2.0 and 3.0), then the header: a Python dict literal padded with
//   spaces and ended by '\n' so that the data starts at a multiple of 64 bytes.
constexpr std::string_view kMagic = "\x93NUMPY";  // (N is not a hex digit)
constexpr size_t kArrayAlign = 64;
// numpy (>= 1.24) pads the header with room for shape[0] to grow to 21 digits, so appending
// rows can rewrite the header in place. We copy it to stay byte-identical to numpy.save.
constexpr size_t kGrowthAxisMaxDigits = 21;
// Larger element counts cannot be real tensors; the limit keeps byte counts far from overflow.

const char* const kResaveHint = "re-save the array with numpy.save";

[[noreturn]] void fail(const std::string& source, const std::string& message) {
  throw Error(SourceLocation{source, 0, 0, ""}, message);
}

// Python's repr of a shape tuple: (), (4,), (2, 3).
std::string shape_repr(const std::vector<int64_t>& shape) {
  if (shape.size() == 1) return fmt::format("({},)", shape[0]);
  return fmt::format("({})", fmt::join(shape, ", "));
}

// Header text quoted for an error message: printable ASCII only, and not too long, because a
// corrupt file can put anything there.
std::string quote_for_message(std::string_view text) {
  constexpr size_t kMaxShown = 80;
  std::string out;
  for (size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  if (text.size() > kMaxShown) out += "...";
  return out;
}

uint32_t read_le(std::string_view bytes, size_t offset, int width) {
  uint32_t value = 0;
  for (int i = width - 1; i >= 0; --i) {
    value = (value << 8) | static_cast<unsigned char>(bytes[offset + static_cast<size_t>(i)]);
  }
  return value;
}

// The three header fields, as found in the dict.
struct NpyHeader {
  std::optional<std::string> descr;
  std::optional<bool> fortran_order;
  std::optional<std::vector<int64_t>> shape;
};

// Parses the subset of Python literal syntax numpy writes in headers: a dict with string keys
// whose values are a string, True/False, or a tuple of integers. Anything else is an error, so
// no input can make it loop, recurse or read past the end.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& source) : text_(text), source_(source) {}

  NpyHeader parse() {
    NpyHeader header;
    skip_space();
    expect('{', "the header must be a Python dict starting with '{'");
    while (true) {
      skip_space();
      if (peek() == '}') break;
      std::string key = parse_string("a quoted key such as 'descr'");
      skip_space();
      expect(':', fmt::format("expected ':' after key '{}'", quote_for_message(key)));
      skip_space();
      if (key == "descr") {
        if (header.descr) duplicate(key);
        if (peek() == '[') {
          fail(source_,
               "unsupported dtype: the array has a structured (record) dtype; tpusim reads plain "
               "int8, int32, bf16 (as uint16) and fp32 arrays");
        }
        header.descr = parse_string("a dtype descriptor string such as '<f4'");
      } else if (key == "fortran_order") {
        if (header.fortran_order) duplicate(key);
        header.fortran_order = parse_bool(key);
      } else if (key == "shape") {
        if (header.shape) duplicate(key);
        header.shape = parse_shape();
      } else {
        malformed(
            fmt::format("unexpected key '{}' (an .npy header has exactly the keys 'descr', "
                        "'fortran_order' and 'shape')",
                        quote_for_message(key)));
      }
      skip_space();
      if (peek() == ',') {
        ++position_;
        continue;
      }
      if (peek() == '}') break;
      malformed(fmt::format("expected ',' or '}}' after the value of '{}'", key));
    }
    ++position_;  // the '}'
    skip_space();
    if (position_ != text_.size()) malformed("unexpected text after the closing '}'");
    if (!header.descr) malformed("the key 'descr' is missing");
    if (!header.fortran_order) malformed("the key 'fortran_order' is missing");
    if (!header.shape) malformed("the key 'shape' is missing");
    return header;
  }

 private:
  // End of text reads as '\0', which no rule accepts, so every rule stops there.
  char peek() const { return position_ < text_.size() ? text_[position_] : '\0'; }

  void skip_space() {
    while (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r') ++position_;
  }

  void expect(char c, const std::string& what) {
    if (peek() != c) malformed(what);
    ++position_;
  }

  [[noreturn]] void malformed(const std::string& what) const {
    std::string_view shown = text_;  // without the padding, which only adds noise
    while (!shown.empty() && (shown.back() == ' ' || shown.back() == '\n')) shown.remove_suffix(1);
    fail(source_, fmt::format("malformed .npy header at character {}: {}; the header is \"{}\"; {}",
                              position_ + 1, what, quote_for_message(shown), kResaveHint));
  }

  [[noreturn]] void duplicate(const std::string& key) const {
    malformed(fmt::format("the key '{}' appears twice", key));
  }

  // A quoted string without escapes (numpy never writes any in the keys and descr we accept).
  std::string parse_string(const std::string& what) {
    char quote = peek();
    if (quote != '\'' && quote != '"') malformed("expected " + what);
    size_t start = ++position_;
    while (position_ < text_.size() && text_[position_] != quote) {
      if (text_[position_] == '\\') malformed("escape sequences in strings are not supported");
      ++position_;
    }
    if (position_ == text_.size()) malformed("a string is not closed");
    std::string value(text_.substr(start, position_ - start));
    ++position_;  // the closing quote
    return value;
  }

  bool parse_bool(const std::string& key) {
    if (text_.substr(position_, 4) == "True") {
      position_ += 4;
      return true;
    }
    if (text_.substr(position_, 5) == "False") {
      position_ += 5;
      return false;
    }
    malformed(fmt::format("the value of '{}' must be True or False", key));
  }

  // A Python tuple of non-negative integers: (), (4,), (2, 3) or (2, 3,). A Python 2 'L'
  // suffix (old numpy wrote "(4L,)") is accepted. "(4)" is an int, not a tuple, so it is
  // rejected as numpy would.
  std::vector<int64_t> parse_shape() {
    const char* what = "the shape must be a tuple of non-negative integers such as (4,) or (2, 3)";
    expect('(', what);
    std::vector<int64_t> shape;
    bool trailing_comma = false;
    while (true) {
      skip_space();
      if (peek() == ')') break;
      if (peek() < '0' || peek() > '9') malformed(what);
      int64_t dim = 0;
      while (peek() >= '0' && peek() <= '9') {
        int digit = peek() - '0';
        if (dim > (std::numeric_limits<int64_t>::max() - digit) / 10) {
          malformed("a shape dimension is too large");
        }
        dim = dim * 10 + digit;
        ++position_;
      }
      if (peek() == 'L' || peek() == 'l') ++position_;
      shape.push_back(dim);
      skip_space();
      trailing_comma = peek() == ',';
      if (trailing_comma) {
        ++position_;
        continue;
      }
      if (peek() != ')') malformed(what);
    }
    ++position_;  // the ')'
    if (shape.size() == 1 && !trailing_comma) malformed(what);
    return shape;
  }

  std::string_view text_;
  const std::string& source_;
  size_t position_ = 0;
};

// Maps a descriptor to a tpusim type, or explains why it cannot be read.
DType dtype_from_descr(const std::string& descr, const std::string& source) {
  std::string_view body = descr;
  char order = '\0';
  if (!body.empty() && (body[0] == '<' || body[0] == '>' || body[0] == '|' || body[0] == '=')) {
    order = body[0];
    body.remove_prefix(1);
  }
  std::optional<DType> dtype;
  if (body == "i1") dtype = DType::Int8;
  if (body == "i4") dtype = DType::Int32;
  if (body == "u2") dtype = DType::BF16;
  if (body == "f4") dtype = DType::FP32;

  // Byte order does not apply to single bytes; wider types must say little-endian ('<').
  bool order_ok = dtype && (dtype_size(*dtype) == 1 || order == '<');
  if (dtype && order == '>' && dtype_size(*dtype) > 1) {
    fail(source, fmt::format("the array is big-endian ('{}'); tpusim reads little-endian data: "
                             "save a.astype('<{}') instead",
                             descr, body));
  }
  if (!order_ok) {
    fail(source,
         fmt::format("unsupported dtype '{}'; tpusim reads int8 ('|i1'), int32 ('<i4'), fp32 "
                     "('<f4') and bf16, which numpy lacks and is stored as its uint16 bit "
                     "patterns ('<u2'); convert the array with a.astype(...) and save it again",
                     quote_for_message(descr)));
  }
  return *dtype;
}


}  // namespace

int64_t HostTensor::element_count() const {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;
  return count;
}

std::string npy_descr(DType dtype) {
  switch (dtype) {
    case DType::Int8:
      return "|i1";
    case DType::Int32:
      return "<i4";
    case DType::BF16:
      return "<u2";
    case DType::FP32:
      return "<f4";
  }
  internal_error(__FILE__, __LINE__, "unknown DType");
}

HostTensor parse_npy(std::string_view file, const std::string& source) {
  if (file.empty()) fail(source, "the file is empty; " + std::string(kResaveHint));
  if (file.size() < kMagic.size() && kMagic.substr(0, file.size()) == file) {
    fail(source, fmt::format("truncated header: the file ends after {} bytes, inside the magic; {}",
                             file.size(), kResaveHint));
  }
  if (file.size() < kMagic.size() || file.substr(0, kMagic.size()) != kMagic) {
    fail(source,
         "not an .npy file: it does not start with the \\x93NUMPY magic; write tensors with "
         "numpy.save (not numpy.savez, pickle or tofile)");
  }
  if (file.size() < 8) {
    fail(source, fmt::format("truncated header: the file ends after {} bytes, inside the "
                             "format version; {}",
                             file.size(), kResaveHint));
  }
  int major = static_cast<unsigned char>(file[6]);
  int minor = static_cast<unsigned char>(file[7]);
  if (major < 1 || major > 3 || minor != 0) {
    fail(source, fmt::format("unsupported .npy format version {}.{}; tpusim reads versions 1.0, "
                             "2.0 and 3.0; {}",
                             major, minor, kResaveHint));
  }
  // Version 1.0 has a 16-bit header length; 2.0 and 3.0 (3.0 = UTF-8 header) have 32 bits.
  int length_width = major == 1 ? 2 : 4;
  size_t header_start = 8 + static_cast<size_t>(length_width);
  if (file.size() < header_start) {
    fail(source, fmt::format("truncated header: the file ends after {} bytes, inside the header "
                             "length; {}",
                             file.size(), kResaveHint));
  }
  size_t header_length = read_le(file, 8, length_width);
  if (file.size() - header_start < header_length) {
    fail(source, fmt::format("truncated header: the header should be {} bytes but the file ends "
                             "{} bytes into it; {}",
                             header_length, file.size() - header_start, kResaveHint));
  }
  std::string_view header_text = file.substr(header_start, header_length);
  NpyHeader header = HeaderParser(header_text, source).parse();

  HostTensor tensor;
  tensor.dtype = dtype_from_descr(*header.descr, source);
  if (*header.fortran_order) {
    fail(source,
         "the array is stored in Fortran (column-major) order; tpusim reads C "
         "(row-major) order: save np.ascontiguousarray(a) instead");
  }
  tensor.shape = *header.shape;
  std::optional<int64_t> count = checked_element_count(tensor.shape);
  if (!count) {
    fail(source, fmt::format("the shape {} has more than 2^48 elements; {}",
                             shape_repr(tensor.shape), kResaveHint));
  }

  size_t data_start = header_start + header_length;
  size_t expected = static_cast<size_t>(*count) * static_cast<size_t>(dtype_size(tensor.dtype));
  size_t actual = file.size() - data_start;
  std::string what = fmt::format("shape {} of {} needs {} bytes of data", shape_repr(tensor.shape),
                                 dtype_name(tensor.dtype), expected);
  if (actual < expected) {
    fail(source, fmt::format("the data is truncated: {} but the file has {} after the header; {}",
                             what, actual, kResaveHint));
  }
  if (actual > expected) {
    fail(source, fmt::format("{} but the file has {} after the header; tpusim reads exactly one "
                             "array per .npy file: save each array with its own numpy.save",
                             what, actual));
  }
  tensor.bytes.assign(file.begin() + static_cast<std::ptrdiff_t>(data_start), file.end());
  return tensor;
}

HostTensor read_npy(const std::string& path, int64_t expected_data_bytes) {
  std::error_code ignored;
  if (!std::filesystem::exists(path, ignored)) {
    fail(path,
         "no such .npy file; check the path (a relative path is taken from the current "
         "directory)");
  }
  if (std::filesystem::is_directory(path, ignored)) {
    fail(path, "is a directory, not an .npy file");
  }
  // A format 1.0 header is at most 65535 + 10 bytes; format 2.0 allows 4 GiB, so allow 1 MiB.
  constexpr int64_t kLargestHeader = int64_t{1} << 20;
  const uintmax_t file_bytes = std::filesystem::file_size(path, ignored);
  if (expected_data_bytes < INT64_MAX - kLargestHeader && file_bytes != static_cast<uintmax_t>(-1) &&
      file_bytes > static_cast<uintmax_t>(expected_data_bytes + kLargestHeader)) {
    fail(path, fmt::format("is {} bytes, far more than the {} bytes of data the tensor it is for holds; check the path",
                           file_bytes, expected_data_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, fmt::format("cannot open the .npy file: {}", std::strerror(errno)));
  // Pipes and devices have no size (/dev/zero would be read forever), so the read itself stops
  // once it holds more than any file for this tensor can.
  const int64_t most_bytes = expected_data_bytes < INT64_MAX - kLargestHeader
                                 ? expected_data_bytes + kLargestHeader
                                 : INT64_MAX;
  std::string contents;
  char chunk[64 * 1024];
  while (in) {
    in.read(chunk, sizeof chunk);
    contents.append(chunk, static_cast<size_t>(in.gcount()));
    if (static_cast<int64_t>(contents.size()) > most_bytes) {
      fail(path, fmt::format("holds more than {} bytes, far more than the {} bytes of data the tensor it is for "
                             "holds; check the path",
                             most_bytes, expected_data_bytes));
    }
  }
  if (in.bad()) fail(path, fmt::format("cannot read the .npy file: {}", std::strerror(errno)));
  return parse_npy(contents, path);
}

std::string encode_npy(const HostTensor& tensor) {
  std::optional<int64_t> count = checked_element_count(tensor.shape);
  TPUSIM_CHECK(count.has_value(), "HostTensor shape is negative or too large");
  TPUSIM_CHECK(tensor.bytes.size() ==
                   static_cast<size_t>(*count) * static_cast<size_t>(dtype_size(tensor.dtype)),
               "HostTensor byte count does not match its shape and dtype");

  // numpy's _write_array_header: keys in sorted order, each "'key': repr(value), ".
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                   npy_descr(tensor.dtype), shape_repr(tensor.shape));
  if (!tensor.shape.empty()) {
    header.append(kGrowthAxisMaxDigits - std::to_string(tensor.shape[0]).size(), ' ');
  }
  // numpy's _wrap_header: spaces then '\n' so the data starts at a multiple of 64. When already
  // aligned numpy still adds a full 64 spaces; we do the same. Version 2.0 is what numpy falls
  // back to when the header outgrows 1.0's 16-bit length (only for absurd ranks).
  int major = 1;
  size_t padded_length = 0;
  for (int version : {1, 2}) {
    major = version;
    size_t prefix = version == 1 ? 10 : 12;
    size_t with_newline = header.size() + 1;
    padded_length = with_newline + kArrayAlign - (prefix + with_newline) % kArrayAlign;
    if (padded_length <= std::numeric_limits<uint16_t>::max()) break;
  }
  header.append(padded_length - header.size() - 1, ' ');
  header += '\n';

  std::string out(kMagic);
  out += static_cast<char>(major);
  out += '\0';
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i) {
    out += static_cast<char>((padded_length >> (8 * i)) & 0xff);
  }
  out += header;
  out.append(reinterpret_cast<const char*>(tensor.bytes.data()), tensor.bytes.size());
  return out;
}

void write_npy(const std::string& path, const HostTensor& tensor) {
  std::string contents = encode_npy(tensor);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    fail(path, fmt::format("cannot create the .npy file: {}; check that the directory exists "
                           "and is writable",
                           std::strerror(errno)));
  }
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  out.close();
  if (!out) fail(path, fmt::format("cannot write the .npy file: {}", std::strerror(errno)));
}

}  // namespace tpusim

// Validated reading of input files (schema `ringscan` v1), of ground truth and of detection
// labels. Nothing in a file is trusted: shapes, types, links and values are checked before use.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include "hdf5_handle.hpp"
#include "hdf5_reader_detail.hpp"
#include "ringscan/error.hpp"
#include "ringscan/io.hpp"
#include "ringscan/sizes.hpp"
#include "fresh_memory.hpp"
#include "parallel.hpp"

namespace ringscan {
namespace {

using h5::Handle;

constexpr int64_t kMaxBytes = kMaxSize;
/// Rows per hyperslab where the caller has no chunk size (labels of output files).
constexpr int64_t kDefaultChunkRows = int64_t{1} << 16;
/// Values per block of the elementwise parallel loops (conversion, finiteness).
constexpr int64_t kElementBlock = int64_t{1} << 15;

int64_t saturating_mul(int64_t a, int64_t b) { return saturating_multiply(a, b); }

/// Sizes `v` to n elements, its pages mapped in parallel first (fresh_memory.hpp), turning
/// an allocation failure into OutOfMemory.
template <class T>
void allocate(std::vector<T>& v, int64_t n, const std::string& what) {
  try {
    detail::resize_populated(v, static_cast<size_t>(n));
  } catch (const std::bad_alloc&) {
    throw OutOfMemory(what + ": out of memory allocating " +
                         format_size(saturating_mul(n, int64_t(sizeof(T)))));
  } catch (const std::length_error&) {
    throw BudgetExceeded(what + ": " + std::to_string(n) + " elements cannot be allocated");
  }
}

/// Offset of the first byte of `text` that breaks UTF-8 (overlong forms, surrogates and
/// code points past U+10FFFF included), or -1 when it is all valid.
int64_t first_invalid_utf8(const char* text, size_t n) {
  const auto* b = reinterpret_cast<const unsigned char*>(text);
  size_t i = 0;
  while (i < n) {
    const unsigned char c = b[i];
    size_t len = 0;
    uint32_t lo = 0x80, hi = 0xBF;  // range of the second byte
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // past U+10FFFF
    } else {
      return int64_t(i);
    }
    if (n - i < len) return int64_t(i);
    if (b[i + 1] < lo || b[i + 1] > hi) return int64_t(i + 1);
    for (size_t k = 2; k < len; ++k)
      if ((b[i + k] & 0xC0) != 0x80) return int64_t(i + k);
    i += len;
  }
  return -1;
}

/// Reads variable-length strings of `stored`'s character set through `read` (an H5Aread or
/// H5Dread into char pointers, given the memory type), one per element of `out`, and frees
/// what HDF5 allocated for them; false when HDF5 failed.
template <class Read>
bool read_variable_strings(hid_t stored, hid_t space, std::vector<std::string>& out, Read&& read) {
  Handle memtype(H5Tcopy(H5T_C_S1), H5Tclose);
  if (!memtype.valid() || H5Tset_size(memtype.get(), H5T_VARIABLE) < 0 ||
      H5Tset_cset(memtype.get(), H5Tget_cset(stored)) < 0)
    return false;
  std::vector<char*> pointers(out.size(), nullptr);
  if (read(memtype.get(), pointers.data()) < 0) return false;
  for (std::size_t i = 0; i < out.size(); ++i)
    if (pointers[i] != nullptr) out[i] = pointers[i];
#if H5_VERSION_GE(1, 12, 0)
  H5Treclaim(memtype.get(), space, H5P_DEFAULT, pointers.data());
#else
  H5Dvlen_reclaim(memtype.get(), space, H5P_DEFAULT, pointers.data());
#endif
  return true;
}

/// The text of one fixed-length string of `size` bytes: up to its first NUL, and without the
/// trailing spaces of a space-padded type.
std::string fixed_length_string(const char* text, size_t size, bool space_padded) {
  size_t n = strnlen(text, size);
  if (space_padded)
    while (n > 0 && text[n - 1] == ' ') --n;
  return std::string(text, n);
}

/// True when `type` is IEEE binary16 (numpy's float16) in either byte order.
bool is_binary16(hid_t type) {
  size_t spos, epos, esize, mpos, msize;
  return H5Tget_size(type) == 2 && H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) >= 0 &&
         spos == 15 && epos == 10 && esize == 5 && mpos == 0 && msize == 10 &&
         H5Tget_ebias(type) == 15 && H5Tget_norm(type) == H5T_NORM_IMPLIED;
}

/// The stored element type as people name it: "float16", "int64", "uint8", "string"...
std::string type_name(hid_t type) {
  const std::string bits = std::to_string(H5Tget_size(type) * 8);
  switch (H5Tget_class(type)) {
    case H5T_INTEGER: return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + bits;
    case H5T_FLOAT: {
      size_t spos, epos, esize, mpos, msize;
      if (is_binary16(type)) return "float16";
      if (H5Tget_size(type) == 2 && H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) >= 0 &&
          esize == 8 && msize == 7)
        return "bfloat16";
      return "float" + bits;
    }
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    case H5T_ENUM: return "enum";
    case H5T_ARRAY: return "array";
    case H5T_VLEN: return "variable-length sequence";
    case H5T_REFERENCE: return "reference";
    case H5T_OPAQUE: return "opaque";
    case H5T_BITFIELD: return "bitfield";
    case H5T_TIME: return "time";
    default: return "unknown type";
  }
}

std::string object_kind(H5I_type_t type) {
  switch (type) {
    case H5I_GROUP: return "a group";
    case H5I_DATASET: return "a dataset";
    case H5I_DATATYPE: return "a named datatype";
    default: return "another kind of object";
  }
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? " x " : "") + std::to_string(shape[i]);
  return s + "]";
}

enum class Numeric { Integer, Float };

/// One dataset of a file, opened and checked for type and rank, before its data is read.
struct Column {
  std::string name;  ///< "/requests/embedding"
  Handle dataset;
  Handle type;  ///< element type as stored
  std::vector<int64_t> shape;

  bool present() const { return dataset.valid(); }
  int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
  int64_t width() const { return shape.size() > 1 ? shape[1] : 1; }
};

/// An HDF5 file opened for reading whose objects are reached through hard links only; every
/// problem becomes InvalidInput starting with the file's path.
class SourceFile {
 public:
  explicit SourceFile(std::string path) : path_(std::move(path)) {
    check_openable();
    file_ = Handle(H5Fopen(path_.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (!file_.valid()) throw InvalidInput(path_ + ": cannot open as HDF5: " + h5::last_error());
    transfer_ = h5::make_range_checked_transfer(&range_);
    if (!transfer_.valid()) throw InvalidInput(path_ + ": " + h5::last_error());
  }
  SourceFile(const SourceFile&) = delete;
  SourceFile& operator=(const SourceFile&) = delete;

  const std::string& path() const { return path_; }

  [[noreturn]] void fail(const std::string& object, const std::string& problem) const {
    throw InvalidInput(path_ + ": " + object + ": " + problem);
  }

  /// Throws naming `object` when an HDF5 call failed.
  template <class T>
  T check(T status, const std::string& object) const {
    if (status < 0) fail(object, h5::last_error());
    return status;
  }

  /// The root's "format" attribute (which kind of ringscan file this is).
  std::string format() const { return scalar_string_attribute(file_.get(), "attribute format", "format"); }

  /// Names of the root's attributes, at most `most` of them (the count is untrusted).
  std::vector<std::string> root_attribute_names(int64_t most) const {
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t info{};
    check(H5Oget_info3(file_.get(), &info, H5O_INFO_NUM_ATTRS), "root attributes");
#else
    H5O_info_t info{};
    check(H5Oget_info2(file_.get(), &info, H5O_INFO_NUM_ATTRS), "root attributes");
#endif
    if (info.num_attrs > hsize_t(most))
      fail("root attributes", std::to_string(info.num_attrs) + " of them, more than " + std::to_string(most));
    std::vector<std::string> names;
    for (hsize_t i = 0; i < info.num_attrs; ++i) {
      const std::string object = "root attribute " + std::to_string(i);
      const ssize_t n = check(H5Aget_name_by_idx(file_.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0,
                                                 H5P_DEFAULT), object);
      if (n > 4096) fail(object, "name too long");
      std::string name(size_t(n) + 1, '\0');
      check(H5Aget_name_by_idx(file_.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(),
                               H5P_DEFAULT), object);
      name.resize(size_t(n));
      names.push_back(std::move(name));
    }
    return names;
  }

  /// A root attribute as text: a string's value, a number printed.
  std::string root_attribute_text(const std::string& name) const {
    const std::string object = "attribute " + name;
    Handle attr = open_attribute(file_.get(), object, name.c_str());
    Handle type(check(H5Aget_type(attr.get()), object), H5Tclose);
    require_single_element(attr.get(), object);
    const H5T_class_t kind = H5Tget_class(type.get());
    if (kind == H5T_STRING) return read_strings(attr.get(), object, 1)[0];
    if (kind == H5T_INTEGER) {
      int64_t v = 0;
      check(H5Aread(attr.get(), H5T_NATIVE_INT64, &v), object);
      return std::to_string(v);
    }
    if (kind == H5T_FLOAT) {
      double v = 0;
      check(H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &v), object);
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.6g", v);
      return buf;
    }
    fail(object, "expected a string or a number, found " + type_name(type.get()));
  }

  /// Checks the root attributes that identify a file of `format` at schema version 1.
  void check_identity(const std::string& format, const char* version_attribute) const {
    const std::string found = scalar_string_attribute(file_.get(), "attribute format", "format");
    if (found != format) {
      std::string hint;
      if (found == "ringscan-output") hint = " (this is a detection output, not an input file)";
      if (found == "ringscan") hint = " (this is an input file, not a detection output)";
      fail("attribute format", "is \"" + found + "\", expected \"" + format + "\"" + hint);
    }
    const std::string object = std::string("attribute ") + version_attribute;
    Handle attr = open_attribute(file_.get(), object, version_attribute);
    Handle type(check(H5Aget_type(attr.get()), object), H5Tclose);
    if (H5Tget_class(type.get()) != H5T_INTEGER)
      fail(object, "expected an integer, found " + type_name(type.get()));
    require_single_element(attr.get(), object);
    int64_t version = 0;
    check(H5Aread(attr.get(), H5T_NATIVE_INT64, &version), object);
    if (version != 1)
      fail(object, "is " + std::to_string(version) + ", this ringscan reads schema version 1");
  }

  /// Opens dataset `name`; an absent optional one gives a Column that is not present().
  /// `rank` is the dataset's rank; with `or_rank` (> 0), that rank is accepted as well.
  Column column(const std::string& name, Numeric kind, int rank, bool required, int or_rank = 0) const {
    Column c;
    c.name = name;
    c.dataset = open_object(name, H5I_DATASET);
    if (!c.dataset.valid()) {
      if (required) fail(name, "missing (required)");
      return c;
    }
    c.type = Handle(check(H5Dget_type(c.dataset.get()), name), H5Tclose);
    check_element_type(c, kind);
    c.shape = shape_of(c, rank, or_rank);
    check_storage(c);
    return c;
  }

  /// Opens the optional dataset `name` of UTF-8 strings [rows] (fixed or variable length).
  Column text_column(const std::string& name) const {
    Column c;
    c.name = name;
    c.dataset = open_object(name, H5I_DATASET);
    if (!c.dataset.valid()) return c;
    c.type = Handle(check(H5Dget_type(c.dataset.get()), name), H5Tclose);
    if (H5Tget_class(c.type.get()) != H5T_STRING)
      fail(name, "expected strings (UTF-8 text), found " + type_name(c.type.get()));
    c.shape = shape_of(c, 1, 0);
    check_storage(c);
    return c;
  }

  /// Rows [first, first + count) of the text column `c`, each checked to be UTF-8 of at
  /// most kMostRequestTextBytes bytes.
  std::vector<std::string> read_text_rows(const Column& c, int64_t first, int64_t count) const {
    std::vector<std::string> out(static_cast<size_t>(count));
    if (count == 0) return out;
    const hsize_t start = hsize_t(first), extent = hsize_t(count);
    Handle file_space(check(H5Dget_space(c.dataset.get()), c.name), H5Sclose);
    check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &start, nullptr, &extent, nullptr), c.name);
    Handle memory_space(check(H5Screate_simple(1, &extent, nullptr), c.name), H5Sclose);
    const std::string rows = "rows " + std::to_string(first) + ".." + std::to_string(first + count - 1);
    if (check(H5Tis_variable_str(c.type.get()), c.name) > 0) {
      // Copied, and HDF5's strings freed, before any is checked: a bad one throws.
      if (!read_variable_strings(c.type.get(), memory_space.get(), out, [&](hid_t memtype, char** into) {
            return H5Dread(c.dataset.get(), memtype, memory_space.get(), file_space.get(), H5P_DEFAULT, into);
          }))
        fail(c.name, "cannot read " + rows + ": " + h5::last_error());
      for (int64_t i = 0; i < count; ++i) out[i] = text_of(c, first + i, out[i].data(), out[i].size());
      return out;
    }
    const size_t size = H5Tget_size(c.type.get());
    if (size == 0 || size > size_t(kMostRequestTextBytes))
      fail(c.name, "fixed-length strings of " + std::to_string(size) + " bytes, more than " +
                       std::to_string(kMostRequestTextBytes));
    std::vector<char> buffer(size * static_cast<size_t>(count));
    if (H5Dread(c.dataset.get(), c.type.get(), memory_space.get(), file_space.get(), H5P_DEFAULT,
                buffer.data()) < 0)  // the stored type: no conversion
      fail(c.name, "cannot read " + rows + ": " + h5::last_error());
    const bool space_padded = H5Tget_strpad(c.type.get()) == H5T_STR_SPACEPAD;
    for (int64_t i = 0; i < count; ++i) {
      const std::string text = fixed_length_string(buffer.data() + size * size_t(i), size, space_padded);
      out[i] = text_of(c, first + i, text.data(), text.size());
    }
    return out;
  }

  /// Reads rows [first, first + count) of `c` as `memtype` into `out` (count x width values).
  void read_rows(const Column& c, hid_t memtype, int64_t first, int64_t count, void* out) const {
    if (count == 0) return;
    const std::string rows =
        "rows " + std::to_string(first) + ".." + std::to_string(first + count - 1);
    const hsize_t start[2] = {hsize_t(first), 0};
    const hsize_t extent[2] = {hsize_t(count), hsize_t(c.width())};
    const int rank = int(c.shape.size());
    Handle file_space(check(H5Dget_space(c.dataset.get()), c.name), H5Sclose);
    check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, extent, nullptr),
          c.name);
    Handle memory_space(check(H5Screate_simple(rank, extent, nullptr), c.name), H5Sclose);
    range_.out_of_range = false;
    if (H5Dread(c.dataset.get(), memtype, memory_space.get(), file_space.get(), transfer_.get(),
                out) < 0) {
      if (range_.out_of_range)
        fail(c.name, "value out of the range of " + type_name(memtype) + " in " + rows);
      fail(c.name, "cannot read " + rows + ": " + h5::last_error());
    }
  }

  /// The strings of attribute `attribute` of dataset `c`, which must hold `count` of them
  /// (fixed or variable length); empty when the attribute is absent.
  std::vector<std::string> string_attribute(const Column& c, const char* attribute,
                                            int64_t count) const {
    const std::string object = c.name + " attribute " + attribute;
    if (check(H5Aexists(c.dataset.get(), attribute), object) == 0) return {};
    Handle attr(check(H5Aopen(c.dataset.get(), attribute, H5P_DEFAULT), object), H5Aclose);
    return read_strings(attr.get(), object, count);
  }

  /// The same for an attribute of any number of strings up to `most`; absent: empty.
  std::vector<std::string> string_list_attribute(const Column& c, const char* attribute,
                                                 int64_t most) const {
    const std::string object = c.name + " attribute " + attribute;
    if (check(H5Aexists(c.dataset.get(), attribute), object) == 0) return {};
    Handle attr(check(H5Aopen(c.dataset.get(), attribute, H5P_DEFAULT), object), H5Aclose);
    Handle space(check(H5Aget_space(attr.get()), object), H5Sclose);
    const int64_t found = check(H5Sget_simple_extent_npoints(space.get()), object);
    if (found > most)
      fail(object, "has " + std::to_string(found) + " entries, more than the " + std::to_string(most) +
                       " feature columns");
    return read_strings(attr.get(), object, found);
  }

  /// Opens the object at `name` ("/a/b") after checking that every link on the way is a
  /// hard link to a group (a dataset at the end); empty when some link is absent.
  Handle open_object(const std::string& name, H5I_type_t expected) const {
    std::string prefix;
    size_t begin = 1;
    while (begin <= name.size()) {
      size_t end = name.find('/', begin);
      if (end == std::string::npos) end = name.size();
      prefix = name.substr(0, end);
      const bool last = end == name.size();
      if (check(H5Lexists(file_.get(), prefix.c_str(), H5P_DEFAULT), prefix) == 0) return Handle();
      H5L_info_t link;
      check(H5Lget_info(file_.get(), prefix.c_str(), &link, H5P_DEFAULT), prefix);
      // Links out of the file would let a file make ringscan read other files.
      if (link.type == H5L_TYPE_EXTERNAL)
        fail(prefix, "external link refused (objects must be stored in this file)");
      if (link.type != H5L_TYPE_HARD)
        fail(prefix, std::string(link.type == H5L_TYPE_SOFT ? "soft" : "user-defined") +
                         " link refused (objects must be reached by hard links)");
      Handle object(check(H5Oopen(file_.get(), prefix.c_str(), H5P_DEFAULT), prefix), H5Oclose);
      const H5I_type_t type = H5Iget_type(object.get());
      const H5I_type_t wanted = last ? expected : H5I_GROUP;
      if (type != wanted)
        fail(prefix, "expected " + object_kind(wanted) + ", found " + object_kind(type));
      if (last) return object;
      begin = end + 1;
    }
    return Handle();
  }

 private:
  /// Checks before HDF5 sees the file, so missing, empty or foreign files get a plain message.
  void check_openable() const {
    struct stat st;
    if (::stat(path_.c_str(), &st) != 0)
      throw InvalidInput(path_ + ": cannot open: " + std::strerror(errno));
    if (S_ISDIR(st.st_mode)) throw InvalidInput(path_ + ": is a directory, not an HDF5 file");
    if (!S_ISREG(st.st_mode)) throw InvalidInput(path_ + ": is not a regular file");
    if (::access(path_.c_str(), R_OK) != 0)
      throw InvalidInput(path_ + ": cannot read: " + std::strerror(errno));
    if (st.st_size == 0) throw InvalidInput(path_ + ": is empty, not an HDF5 file");
    if (H5Fis_hdf5(path_.c_str()) <= 0) throw InvalidInput(path_ + ": not an HDF5 file");
  }

  Handle open_attribute(hid_t owner, const std::string& object, const char* attribute) const {
    if (check(H5Aexists(owner, attribute), object) == 0)
      fail(object, "missing: not a ringscan file (or a file of another schema)");
    return Handle(check(H5Aopen(owner, attribute, H5P_DEFAULT), object), H5Aclose);
  }

  void require_single_element(hid_t attr, const std::string& object) const {
    Handle space(check(H5Aget_space(attr), object), H5Sclose);
    if (check(H5Sget_simple_extent_npoints(space.get()), object) != 1)
      fail(object, "expected a single value");
  }

  std::string scalar_string_attribute(hid_t owner, const std::string& object,
                                      const char* attribute) const {
    Handle attr = open_attribute(owner, object, attribute);
    return read_strings(attr.get(), object, 1)[0];
  }

  /// Reads an attribute of `count` strings, fixed or variable length.
  std::vector<std::string> read_strings(hid_t attr, const std::string& object,
                                        int64_t count) const {
    Handle type(check(H5Aget_type(attr), object), H5Tclose);
    if (H5Tget_class(type.get()) != H5T_STRING)
      fail(object, "expected strings, found " + type_name(type.get()));
    Handle space(check(H5Aget_space(attr), object), H5Sclose);
    const int64_t found = check(H5Sget_simple_extent_npoints(space.get()), object);
    if (found != count)
      fail(object, "has " + std::to_string(found) + " entries, expected " + std::to_string(count));
    std::vector<std::string> out(static_cast<size_t>(count));
    if (count == 0) return out;
    if (check(H5Tis_variable_str(type.get()), object) > 0) {
      if (!read_variable_strings(type.get(), space.get(), out,
                                 [&](hid_t memtype, char** into) { return H5Aread(attr, memtype, into); }))
        fail(object, h5::last_error());
      return out;
    }
    const size_t size = H5Tget_size(type.get());
    // Declared sizes are untrusted; real attributes are far smaller than this.
    if (size == 0 || saturating_mul(int64_t(size), count) > (int64_t{16} << 20))
      fail(object, "string attribute too large");
    std::vector<char> buffer(size * static_cast<size_t>(count));
    check(H5Aread(attr, type.get(), buffer.data()), object);  // the stored type: no conversion
    const bool space_padded = H5Tget_strpad(type.get()) == H5T_STR_SPACEPAD;
    for (int64_t i = 0; i < count; ++i)
      out[i] = fixed_length_string(buffer.data() + size * size_t(i), size, space_padded);
    return out;
  }

  /// `n` bytes at `text` as the text of row `row`, or InvalidInput when they are too long or
  /// not UTF-8.
  std::string text_of(const Column& c, int64_t row, const char* text, size_t n) const {
    if (n > size_t(kMostRequestTextBytes))
      fail(c.name, "row " + std::to_string(row) + ": text of " + std::to_string(n) + " bytes, more than " +
                       std::to_string(kMostRequestTextBytes));
    const int64_t bad = first_invalid_utf8(text, n);
    if (bad >= 0)
      fail(c.name, "row " + std::to_string(row) + ": not UTF-8 (invalid byte at offset " + std::to_string(bad) + ")");
    return std::string(text, n);
  }

  void check_element_type(const Column& c, Numeric kind) const {
    const hid_t type = c.type.get();
    const H5T_class_t cls = H5Tget_class(type);
    const size_t size = H5Tget_size(type);
    if (cls != H5T_INTEGER && cls != H5T_FLOAT)
      fail(c.name, "expected a numeric type, found " + type_name(type));
    if (kind == Numeric::Integer) {
      if (cls != H5T_INTEGER) fail(c.name, "expected an integer type, found " + type_name(type));
      if (size > 8) fail(c.name, "unsupported integer type " + type_name(type));
    } else {
      if (cls != H5T_FLOAT)
        fail(c.name,
             "expected a float type (float16, float32 or float64), found " + type_name(type));
      if (size != 2 && size != 4 && size != 8)
        fail(c.name, "unsupported float type " + type_name(type) +
                         " (expected float16, float32 or float64)");
    }
  }

  std::vector<int64_t> shape_of(const Column& c, int rank, int or_rank) const {
    Handle space(check(H5Dget_space(c.dataset.get()), c.name), H5Sclose);
    if (H5Sget_simple_extent_type(space.get()) == H5S_NULL)
      fail(c.name, "has no data (null dataspace)");
    const int found = check(H5Sget_simple_extent_ndims(space.get()), c.name);
    hsize_t dims[H5S_MAX_RANK] = {};
    check(H5Sget_simple_extent_dims(space.get(), dims, nullptr), c.name);
    std::vector<int64_t> shape;
    for (int i = 0; i < found; ++i) {
      if (dims[i] > hsize_t(std::numeric_limits<int64_t>::max()))
        fail(c.name, "declared dimension " + std::to_string(dims[i]) + " is too large");
      shape.push_back(int64_t(dims[i]));
    }
    if (found != rank && !(or_rank > 0 && found == or_rank))
      fail(c.name, "expected rank " + std::to_string(rank) + (rank == 1 ? " [rows]" : " [rows, width]") +
                       (or_rank == 2 ? " or 2 [rows, width]" : "") + ", found rank " +
                       std::to_string(found) + " " + shape_text(shape));
    return shape;
  }

  /// Refuses datasets whose data would be read from other files.
  void check_storage(const Column& c) const {
    Handle plist(check(H5Dget_create_plist(c.dataset.get()), c.name), H5Pclose);
    if (H5Pget_layout(plist.get()) == H5D_VIRTUAL)
      fail(c.name, "virtual dataset refused (its data lives in other files)");
    if (check(H5Pget_external_count(plist.get()), c.name) > 0)
      fail(c.name, "external raw data storage refused (data must be stored in this file)");
  }

  std::string path_;
  Handle file_;
  mutable h5::RangeGuard range_;
  Handle transfer_;
};

/// Fails naming `c` unless it has `rows` rows, as `reference` does.
void require_rows(const SourceFile& f, const Column& c, int64_t rows,
                  const std::string& reference) {
  if (c.present() && c.rows() != rows)
    f.fail(c.name, "has " + std::to_string(c.rows()) + " rows but " + reference + " has " +
                       std::to_string(rows));
}

/// Calls fn(first, count) for consecutive blocks of at most `chunk` of `total` rows.
template <class Fn>
void for_each_chunk(int64_t total, int64_t chunk, Fn&& fn) {
  for (int64_t first = 0; first < total; first += chunk) fn(first, std::min(chunk, total - first));
}

/// Index of the first NaN or infinity among n values (floats or float16 bits), or n, on the
/// OpenMP threads.
template <class Value>
int64_t first_non_finite(const Value* values, int64_t n) {
  std::atomic<int64_t> first{n};
  detail::parallel_for_blocks(n, kElementBlock, [&](int64_t b, int64_t e) {
    const int64_t bad = detail::first_non_finite_in_block(values + b, e - b);
    if (bad < e - b) detail::atomic_min(first, b + bad);
  });
  return first.load();
}

/// Fails naming the row and column of the first non-finite value of a rows x width block
/// (floats, or float16 bits).
template <class Value>
void require_finite(const SourceFile& f, const Column& c, const Value* block, int64_t first_row, int64_t rows) {
  const int64_t width = c.width();
  const int64_t bad = first_non_finite(block, rows * width);
  if (bad == rows * width) return;
  float v;
  if constexpr (std::is_same_v<Value, uint16_t>)
    v = h5::half_to_float(block[bad]);
  else
    v = block[bad];
  f.fail(c.name, detail::non_finite_problem(v, first_row + bad / width, bad % width));
}

/// Open-addressing map from account id to its row in the account list.
class AccountIndex {
 public:
  /// Bytes an index over `accounts` ids holds.
  static int64_t bytes_for(int64_t accounts) { return saturating_mul(capacity_for(accounts), 16); }

  explicit AccountIndex(int64_t accounts)
      : mask_(uint64_t(capacity_for(accounts)) - 1), ids_(mask_ + 1), rows_(mask_ + 1, -1) {}

  /// Records id at row; returns the row the id already had, or -1 when it is new.
  int64_t insert(int64_t id, int64_t row) {
    for (uint64_t s = slot(id);; s = (s + 1) & mask_) {
      if (rows_[s] < 0) {
        ids_[s] = id;
        rows_[s] = row;
        return -1;
      }
      if (ids_[s] == id) return rows_[s];
    }
  }
  /// Row of `id`, or -1 when it is not an account.
  int64_t find(int64_t id) const {
    for (uint64_t s = slot(id);; s = (s + 1) & mask_) {
      if (rows_[s] < 0) return -1;
      if (ids_[s] == id) return rows_[s];
    }
  }

 private:
  static int64_t capacity_for(int64_t accounts) {
    int64_t capacity = 16;
    while (capacity < accounts * 2 && capacity < (int64_t{1} << 62)) capacity <<= 1;
    return capacity;
  }
  uint64_t slot(int64_t id) const {
    uint64_t x = uint64_t(id) + 0x9e3779b97f4a7c15ULL;  // splitmix64 finaliser
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return (x ^ (x >> 31)) & mask_;
  }

  uint64_t mask_;
  std::vector<int64_t> ids_;
  std::vector<int64_t> rows_;
};

/// Indexes unique account ids; fails naming the first duplicate.
AccountIndex index_accounts(const SourceFile& f, const std::string& name,
                            const std::vector<int64_t>& ids) {
  AccountIndex index(int64_t(ids.size()));
  for (int64_t row = 0; row < int64_t(ids.size()); ++row) {
    const int64_t earlier = index.insert(ids[row], row);
    if (earlier >= 0)
      f.fail(name, "duplicate account id " + std::to_string(ids[row]) + " at rows " +
                       std::to_string(earlier) + " and " + std::to_string(row));
  }
  return index;
}

/// Reads a whole rank-1 integer column as int64, `chunk` rows per hyperslab.
std::vector<int64_t> read_integers(const SourceFile& f, const Column& c, int64_t chunk) {
  std::vector<int64_t> out;
  allocate(out, c.rows(), f.path() + ": " + c.name);
  for_each_chunk(c.rows(), chunk, [&](int64_t first, int64_t count) {
    f.read_rows(c, H5T_NATIVE_INT64, first, count, out.data() + first);
  });
  return out;
}

/// Replaces account ids by their rows in the index; fails naming the first unknown one.
void map_to_rows(const SourceFile& f, const AccountIndex& index, int64_t* ids, int64_t first,
                 int64_t count) {
  std::atomic<int64_t> first_bad{count};
  detail::parallel_for(count, 0, [&](int64_t i) {
    const int64_t row = index.find(ids[i]);
    if (row < 0) {
      detail::atomic_min(first_bad, i);
    } else {
      ids[i] = row;
    }
  });
  const int64_t bad = first_bad.load();
  if (bad < count)
    f.fail("/requests/account", "account " + std::to_string(ids[bad]) + " at row " +
                                    std::to_string(first + bad) + " is not in /accounts/id");
}

/// The schema's datasets of an input file, checked for type, rank and agreeing lengths.
struct InputLayout {
  Column account, embedding, time, infra;  // requests
  Column request_id, text;  // requests, for reports only
  Column ids, features, label, payment, created;  // accounts
  int64_t requests = 0, dim = 0;
  int64_t infra_dim = 0;  ///< K: token kinds of /requests/infra ([R] is one kind)
  int64_t accounts = 0;  ///< declared A; 0 until known when derived
  int64_t feature_dim = 0;
  Handle half_type;  ///< valid when embeddings are IEEE float16: converted here, not by HDF5

  bool derived() const { return !ids.present(); }
};

InputLayout open_layout(const SourceFile& f, bool with_labels) {
  InputLayout l;
  l.account = f.column("/requests/account", Numeric::Integer, 1, true);
  l.embedding = f.column("/requests/embedding", Numeric::Float, 2, true);
  l.time = f.column("/requests/time", Numeric::Integer, 1, false);
  l.infra = f.column("/requests/infra", Numeric::Integer, 1, false, 2);
  // Never used in detection, but held to the schema like the rest.
  l.request_id = f.column("/requests/id", Numeric::Integer, 1, false);
  l.text = f.text_column("/requests/text");
  l.ids = f.column("/accounts/id", Numeric::Integer, 1, false);
  l.features = f.column("/accounts/features", Numeric::Float, 2, false);
  // `detect` never touches ground truth, not even to validate it.
  if (with_labels) l.label = f.column("/accounts/label", Numeric::Integer, 1, false);
  l.payment = f.column("/accounts/payment", Numeric::Integer, 1, false);
  l.created = f.column("/accounts/created", Numeric::Integer, 1, false);

  l.requests = l.account.rows();
  for (const Column* c : {&l.embedding, &l.time, &l.infra, &l.request_id, &l.text})
    require_rows(f, *c, l.requests, "/requests/account");
  l.dim = l.embedding.shape[1];
  if (l.dim < 1) f.fail(l.embedding.name, "embedding width is 0 (must be at least 1)");
  l.infra_dim = l.infra.present() ? l.infra.width() : 0;
  if (l.infra.present() && l.infra_dim < 1) f.fail(l.infra.name, "width is 0 (one column per token kind, at least 1)");
  l.half_type = h5::make_half_type();
  if (!l.half_type.valid() || H5Tequal(l.embedding.type.get(), l.half_type.get()) <= 0)
    l.half_type.reset();

  for (const Column* c : {&l.features, &l.label, &l.payment, &l.created}) {
    // Without ids there is no defined order in which these rows would match accounts.
    if (l.derived() && c->present())
      f.fail(c->name, "present without /accounts/id (its rows cannot be matched to accounts)");
    require_rows(f, *c, l.ids.rows(), "/accounts/id");
  }
  l.accounts = l.ids.rows();
  l.feature_dim = l.features.present() ? l.features.shape[1] : 0;
  return l;
}

/// Bytes a Dataset loaded from `l` holds, from the declared shapes (saturating).
int64_t dataset_bytes(const InputLayout& l, int64_t accounts) {
  const int64_t r = l.requests;
  int64_t bytes = saturating_mul(saturating_mul(r, l.dim), 4);
  const int64_t request_columns = 1 + l.time.present() + l.infra_dim;
  bytes = saturating_add(bytes, saturating_mul(r, 8 * request_columns));
  const int64_t account_columns = 1 + l.label.present() + l.payment.present() + l.created.present();
  bytes = saturating_add(bytes, saturating_mul(accounts, 8 * account_columns));
  return saturating_add(bytes, saturating_mul(saturating_mul(accounts, l.feature_dim), 4));
}

/// `bytes` less the embeddings of `unread` rows (a share of the requests is read).
int64_t saturating_sub_embeddings(int64_t bytes, const InputLayout& l, int64_t unread) {
  if (bytes == kMaxBytes) return bytes;
  return bytes - saturating_mul(saturating_mul(unread, l.dim), 4);
}

/// Throws BudgetExceeded when `bytes` (possibly saturated) does not fit ctx's budget.
void require_memory(const Context& ctx, int64_t bytes, const std::string& what) {
  if (bytes == kMaxBytes)
    throw BudgetExceeded(what + ": the declared shapes overflow a 64-bit byte count");
  ctx.require_memory(bytes, what);
}

void read_feature_names(const SourceFile& f, const InputLayout& l, Dataset& d) {
  if (!l.features.present()) return;
  d.feature_names = f.string_attribute(l.features, "names", l.feature_dim);
  // Attribute `categorical`: the names of the columns whose values are categories (a client,
  // an SDK version), where only equal values are evidence.
  const auto categorical = f.string_list_attribute(l.features, "categorical", l.feature_dim);
  if (categorical.empty()) return;
  const std::string object = l.features.name + " attribute categorical";
  if (d.feature_names.empty())
    throw InvalidInput(f.path() + ": " + object + ": names columns, but the dataset has no attribute names");
  d.feature_categorical.assign(l.feature_dim, 0);
  for (const auto& name : categorical) {
    const auto at = std::find(d.feature_names.begin(), d.feature_names.end(), name);
    if (at == d.feature_names.end())
      throw InvalidInput(f.path() + ": " + object + ": '" + name + "' is not one of the columns in names");
    d.feature_categorical[at - d.feature_names.begin()] = 1;
  }
}

}  // namespace

std::vector<std::string> default_infra_names(int64_t kinds) {
  std::vector<std::string> names;
  for (int64_t k = 0; k < kinds; ++k) names.push_back(kinds == 1 ? std::string("infra") : "infra" + std::to_string(k));
  return names;
}

namespace {

/// The names of the token kinds of /requests/infra: attribute `names`, or "infra" (one
/// column) and "infra0", "infra1", ... without it.
void read_infra_names(const SourceFile& f, const InputLayout& l, Dataset& d) {
  if (!l.infra.present()) return;
  d.infra_names = f.string_attribute(l.infra, "names", l.infra_dim);
  if (d.infra_names.empty()) d.infra_names = default_infra_names(l.infra_dim);
  for (std::size_t k = 0; k < d.infra_names.size(); ++k)
    for (std::size_t j = 0; j < k; ++j)
      if (d.infra_names[j] == d.infra_names[k])
        f.fail(l.infra.name, "attribute names: '" + d.infra_names[k] + "' names two columns");
}

/// Reads /accounts/created and checks that every sign-up time is a unix time (0 = unknown).
std::vector<int64_t> read_sign_up_times(const SourceFile& f, const InputLayout& l, int64_t chunk) {
  std::vector<int64_t> t = read_integers(f, l.created, chunk);
  for (std::size_t a = 0; a < t.size(); ++a)
    if (t[a] < 0)
      f.fail(l.created.name, "row " + std::to_string(a) + ": sign-up time " + std::to_string(t[a]) +
                                 " is negative (unix seconds, 0 when unknown)");
  return t;
}

/// Reads the /accounts group into d (ids, features, labels, payment) and indexes the ids.
AccountIndex read_accounts(const SourceFile& f, const InputLayout& l, int64_t chunk, Dataset& d) {
  d.account_ids = read_integers(f, l.ids, chunk);
  AccountIndex index = index_accounts(f, l.ids.name, d.account_ids);
  if (l.feature_dim > 0) {
    allocate(d.features, saturating_mul(l.accounts, l.feature_dim),
             f.path() + ": " + l.features.name);
    for_each_chunk(l.accounts, chunk, [&](int64_t first, int64_t count) {
      float* block = d.features.data() + first * l.feature_dim;
      f.read_rows(l.features, H5T_NATIVE_FLOAT, first, count, block);
      require_finite(f, l.features, block, first, count);
    });
  }
  read_feature_names(f, l, d);
  if (l.label.present()) d.labels = read_integers(f, l.label, chunk);
  if (l.payment.present()) d.account_payment = read_integers(f, l.payment, chunk);
  if (l.created.present()) d.account_created = read_sign_up_times(f, l, chunk);
  return index;
}

/// Reads embedding rows [first, first + count) as float into `out`.
void read_embedding_rows(const SourceFile& f, const InputLayout& l, int64_t first, int64_t count,
                         float* out, std::vector<uint16_t>& staging) {
  if (!l.half_type.valid()) {
    f.read_rows(l.embedding, H5T_NATIVE_FLOAT, first, count, out);
    return;
  }
  // HDF5's own float16 conversion runs at ~20M values/s; this one is limited by memory.
  f.read_rows(l.embedding, l.half_type.get(), first, count, staging.data());
  detail::parallel_for_blocks(count * l.dim, kElementBlock, [&](int64_t b, int64_t e) {
    h5::half_to_float_n(staging.data() + b, out + b, e - b);
  });
}

/// Chunks of a dataset beyond which its extents are not listed (each is one lookup).
constexpr int64_t kMaxExtentChunks = int64_t(1) << 20;

/// Where rows [first, first + rows) of the embeddings lie in the file, when they are stored
/// as they would be read: no filter, in the file itself, the values little-endian float32
/// (value_bytes 4) or float16 bits (`half_bits`, value_bytes 2), contiguous or in chunks of
/// whole rows, every chunk written. Extents are relative to `first`. Empty (the rows are to
/// be read through HDF5) otherwise, or when any lookup fails: the read that follows then
/// reports what is wrong.
std::vector<detail::RowExtent> stored_extents(const Column& c, int64_t dim, int64_t first, int64_t rows,
                                      int64_t value_bytes, bool half_bits) {
  std::vector<detail::RowExtent> out;
  if (rows <= 0) return out;
  const hid_t d = c.dataset.get();
  if (!half_bits && H5Tequal(c.type.get(), H5T_IEEE_F32LE) <= 0) return out;
  const Handle create(H5Dget_create_plist(d), H5Pclose);
  if (!create.valid() || H5Pget_nfilters(create.get()) != 0 || H5Pget_external_count(create.get()) != 0)
    return out;
  const int64_t row_bytes = dim * value_bytes;
  const H5D_layout_t layout = H5Pget_layout(create.get());
  if (layout == H5D_CONTIGUOUS) {
    const haddr_t at = H5Dget_offset(d);
    if (at == HADDR_UNDEF || at > haddr_t(INT64_MAX)) return out;
    int64_t offset;
    if (__builtin_mul_overflow(first, row_bytes, &offset) || __builtin_add_overflow(offset, int64_t(at), &offset))
      return out;
    out.push_back({0, rows, offset});
    return out;
  }
  hsize_t chunk[2] = {0, 0};
  if (layout != H5D_CHUNKED || H5Pget_chunk(create.get(), 2, chunk) != 2 || chunk[1] != hsize_t(dim) ||
      chunk[0] == 0 || chunk[0] > hsize_t(INT64_MAX))
    return out;
  const int64_t per_chunk = int64_t(chunk[0]);
  const int64_t k0 = first / per_chunk, k1 = (first + rows - 1) / per_chunk;
  if (k1 - k0 + 1 > kMaxExtentChunks) return out;
  int64_t chunk_bytes;
  if (__builtin_mul_overflow(per_chunk, row_bytes, &chunk_bytes)) return out;
  for (int64_t k = k0; k <= k1; ++k) {
    const hsize_t at[2] = {hsize_t(k * per_chunk), 0};
    unsigned mask = 0;
    haddr_t address = HADDR_UNDEF;
    hsize_t size = 0;
    if (H5Dget_chunk_info_by_coord(d, at, &mask, &address, &size) < 0 || address == HADDR_UNDEF ||
        address > haddr_t(INT64_MAX) || size != hsize_t(chunk_bytes) || mask != 0)
      return {};
    const int64_t b = std::max(first, k * per_chunk), e = std::min(first + rows, (k + 1) * per_chunk);
    int64_t offset;
    if (__builtin_add_overflow(int64_t(address), (b - k * per_chunk) * row_bytes, &offset)) return {};
    out.push_back({b - first, e - b, offset});
  }
  return out;
}

/// Replaces the account ids in d.request_account by rows of the sorted unique ids.
void derive_accounts(const SourceFile& f, const InputLayout& l, const Context& ctx,
                     const std::string& what, Dataset& d) {
  std::vector<int64_t> ids = d.request_account;
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  const int64_t accounts = int64_t(ids.size());
  require_memory(ctx, saturating_add(dataset_bytes(l, accounts), AccountIndex::bytes_for(accounts)),
                 what);
  d.account_ids = std::move(ids);
  d.account_ids.shrink_to_fit();
  const AccountIndex index = index_accounts(f, "/requests/account", d.account_ids);
  map_to_rows(f, index, d.request_account.data(), 0, l.requests);
  d.accounts_derived = true;
}

DatasetSummary summary_of(const Column& c) { return {c.name, type_name(c.type.get()), c.shape}; }

/// Loads and validates `path`; `datasets` (optional) receives the schema datasets found;
/// with a `sink`, the embeddings go to it chunk by chunk instead of into the Dataset.
Dataset load(const std::string& path, const Context& ctx, const LoadOptions& options,
             std::vector<DatasetSummary>* datasets, detail::EmbeddingSink* sink) {
  const h5::QuietErrors quiet;
  if (options.chunk_rows <= 0)
    throw InvalidInput(path + ": chunk_rows must be positive, got " +
                       std::to_string(options.chunk_rows));
  const ThreadScope threads(ctx.threads);
  const SourceFile f(path);
  f.check_identity("ringscan", "version");
  const InputLayout l = open_layout(f, options.load_labels);
  if (datasets != nullptr)
    for (const Column* c :
         {&l.account, &l.embedding, &l.time, &l.infra, &l.request_id, &l.text, &l.ids, &l.features, &l.label,
          &l.payment, &l.created})
      if (c->present()) datasets->push_back(summary_of(*c));

  const int64_t r = l.requests;
  const int64_t e_first = options.embedding_first, e_rows = options.embedding_rows < 0 ? r : options.embedding_rows;
  if (e_first < 0 || e_rows < 0 || e_first > r || e_rows > r - e_first)
    throw InvalidInput(path + ": " + l.embedding.name + ": rows [" + std::to_string(e_first) + ", " +
                       std::to_string(e_first + e_rows) + ") asked for, but the dataset has " + std::to_string(r) +
                       " rows");
  int64_t chunk = options.chunk_rows;
  // A sink takes the embeddings in blocks of its own size, float16 as stored if it will.
  const bool half_bits = sink != nullptr && l.half_type.valid() && sink->takes_float16();
  const int64_t value_bytes = half_bits ? 2 : 4;
  if (sink != nullptr) chunk = std::max<int64_t>(1, std::min(chunk, sink->rows_per_block(l.dim, value_bytes)));
  const std::string what = path + ": loading " + l.embedding.name + " " +
                           shape_text(l.embedding.shape) + " and the other datasets";
  // Peak: the loaded arrays plus the account index, the float16 staging block and, when
  // accounts are derived, the sorted copy of the request accounts.
  const bool others = !options.embeddings_only;  // every dataset, or the embeddings alone
  int64_t peak = saturating_mul(saturating_mul(e_rows, l.dim), 4);
  if (others)
    peak = saturating_add(saturating_sub_embeddings(dataset_bytes(l, l.accounts), l, r - e_rows),
                          l.derived() ? saturating_mul(r, 8) : AccountIndex::bytes_for(l.accounts));
  if (l.half_type.valid() && !half_bits)
    peak = saturating_add(peak, saturating_mul(saturating_mul(std::min(chunk, r), l.dim), 2));
  const bool request_ids = others && options.load_request_ids && l.request_id.present();
  if (request_ids) peak = saturating_add(peak, saturating_mul(r, 8));
  require_memory(ctx, peak, what);

  Dataset d;
  d.source = path;
  d.dim = l.dim;
  d.embedding_first = e_first;
  d.feature_dim = l.feature_dim;
  AccountIndex index(0);
  if (others && !l.derived()) index = read_accounts(f, l, chunk, d);

  if (others) allocate(d.request_account, r, what);
  if (sink == nullptr)
    allocate(d.embeddings, saturating_mul(e_rows, l.dim), what);
  else
    sink->begin(e_rows, l.dim, value_bytes);
  // Rows stored as they would be read go to a sink that takes them as where they lie.
  const bool by_extent = sink != nullptr && sink->takes_extents() && [&] {
    const std::vector<detail::RowExtent> extents =
        stored_extents(l.embedding, l.dim, e_first, e_rows, value_bytes, half_bits);
    for (const detail::RowExtent& x : extents) sink->extent(x);
    return !extents.empty();
  }();
  if (others && l.time.present()) allocate(d.request_time, r, what);
  if (request_ids) allocate(d.request_ids, r, what);
  d.infra_dim = l.infra_dim;
  read_infra_names(f, l, d);
  if (others && l.infra.present()) allocate(d.request_infra, saturating_mul(r, l.infra_dim), what);
  std::vector<uint16_t> staging;
  if (l.half_type.valid() && !half_bits) allocate(staging, std::min(chunk, r) * l.dim, what);

  ctx.report("load", 0, r);
  for_each_chunk(r, chunk, [&](int64_t first, int64_t count) {
    if (others) {
      int64_t* accounts = d.request_account.data() + first;
      f.read_rows(l.account, H5T_NATIVE_INT64, first, count, accounts);
      if (!l.derived()) map_to_rows(f, index, accounts, first, count);
    }
    // The embeddings of this chunk's rows within the range asked for.
    const int64_t e0 = std::max(first, e_first), e1 = by_extent ? e0 : std::min(first + count, e_first + e_rows);
    if (e0 < e1 && half_bits) {
      auto* block = static_cast<uint16_t*>(sink->block(e0 - e_first, e1 - e0));
      f.read_rows(l.embedding, l.half_type.get(), e0, e1 - e0, block);
      require_finite(f, l.embedding, block, e0, e1 - e0);
      sink->rows(e0 - e_first, e1 - e0);
    } else if (e0 < e1) {
      float* block = sink ? static_cast<float*>(sink->block(e0 - e_first, e1 - e0))
                          : d.embeddings.data() + (e0 - e_first) * l.dim;
      read_embedding_rows(f, l, e0, e1 - e0, block, staging);
      require_finite(f, l.embedding, block, e0, e1 - e0);
      if (sink != nullptr) sink->rows(e0 - e_first, e1 - e0);
    }
    if (others && l.time.present())
      f.read_rows(l.time, H5T_NATIVE_INT64, first, count, d.request_time.data() + first);
    if (others && l.infra.present())
      f.read_rows(l.infra, H5T_NATIVE_INT64, first, count, d.request_infra.data() + first * l.infra_dim);
    if (request_ids) f.read_rows(l.request_id, H5T_NATIVE_INT64, first, count, d.request_ids.data() + first);
    ctx.report("load", first + count, r);
  });
  if (others && l.derived()) derive_accounts(f, l, ctx, what, d);
  return d;
}

/// The declared shapes of an opened, identified input file.
InputShape shape_of(const std::string& path, const InputLayout& l) {
  InputShape s;
  s.path = path;
  s.num_requests = l.requests;
  s.num_accounts = l.accounts;
  s.dim = l.dim;
  s.feature_dim = l.feature_dim;
  s.embedding_bytes = l.half_type.valid() ? 2 : 4;
  s.has_time = l.time.present();
  s.accounts_derived = l.derived();
  return s;
}

/// Bytes the arrays of `d` hold, ground truth excluded (what `detect` loads).
int64_t held_bytes(const Dataset& d) {
  int64_t bytes = int64_t(d.embeddings.size() * sizeof(float) + d.features.size() * sizeof(float));
  for (const auto* v :
       {&d.account_ids, &d.request_account, &d.request_time, &d.request_infra, &d.account_payment, &d.account_created})
    bytes += int64_t(v->size() * sizeof(int64_t));
  for (const auto& name : d.feature_names) bytes += int64_t(name.size());
  return bytes;
}

}  // namespace

Dataset load_dataset(const std::string& path, const Context& ctx, const LoadOptions& options) {
  return load(path, ctx, options, nullptr, nullptr);
}

Dataset detail::load_streaming(const std::string& path, const Context& ctx,
                               const LoadOptions& options, EmbeddingSink& sink) {
  return load(path, ctx, options, nullptr, &sink);
}

InputShape read_input_shape(const std::string& path) {
  const h5::QuietErrors quiet;
  const SourceFile f(path);
  f.check_identity("ringscan", "version");
  return shape_of(path, open_layout(f, false));
}

InputSummary describe_input(const std::string& path, const Context& ctx) {
  InputSummary s;
  LoadOptions options;
  options.load_labels = true;  // for the label statistics; detect itself never loads them
  const Dataset d = load(path, ctx, options, &s.datasets, nullptr);
  s.path = path;
  s.version = 1;
  s.num_requests = d.num_requests();
  s.num_accounts = d.num_accounts();
  s.dim = d.dim;
  s.feature_dim = d.feature_dim;
  s.feature_names = d.feature_names;
  s.has_time = d.has_time();
  s.has_features = d.has_features();
  s.has_labels = std::any_of(s.datasets.begin(), s.datasets.end(),
                             [](const DatasetSummary& ds) { return ds.name == "/accounts/label"; });
  s.has_infra = !d.request_infra.empty();
  s.has_payment = !d.account_payment.empty();
  s.has_created = !d.account_created.empty();
  s.infra_names = d.infra_names;
  s.accounts_derived = d.accounts_derived;
  if (d.has_time()) {
    const auto [lo, hi] = std::minmax_element(d.request_time.begin(), d.request_time.end());
    s.time_min = *lo;
    s.time_max = *hi;
  }
  std::unordered_set<int64_t> rings;
  for (const int64_t label : d.labels) {
    if (label < 0) continue;
    ++s.labelled_accounts;
    rings.insert(label);
  }
  s.labelled_rings = int64_t(rings.size());
  std::vector<char> has_request(size_t(d.num_accounts()), 0);
  for (const int64_t row : d.request_account) has_request[size_t(row)] = 1;
  s.accounts_without_requests = std::count(has_request.begin(), has_request.end(), 0);
  for (int64_t i = 0; i < d.num_requests(); ++i) {
    const float* row = d.embeddings.data() + i * d.dim;
    s.zero_norm_embeddings += std::all_of(row, row + d.dim, [](float v) { return v == 0.0f; });
  }
  s.memory_bytes = held_bytes(d);
  return s;
}

TruthLabels read_truth_labels(const std::string& path, const Context& ctx) {
  const h5::QuietErrors quiet;
  const SourceFile f(path);
  f.check_identity("ringscan", "version");
  Column label = f.column("/accounts/label", Numeric::Integer, 1, false);
  if (!label.present())
    throw InvalidInput(path + ": has no /accounts/label: ground truth needed for evaluate");
  Column ids = f.column("/accounts/id", Numeric::Integer, 1, false);
  if (!ids.present())
    f.fail(label.name, "present without /accounts/id (its rows cannot be matched to accounts)");
  require_rows(f, label, ids.rows(), ids.name);
  const int64_t accounts = ids.rows();
  require_memory(ctx,
                 saturating_add(saturating_mul(accounts, 24), AccountIndex::bytes_for(accounts)),
                 path + ": loading /accounts/id, /accounts/label and /accounts/role");
  TruthLabels t;
  t.account_ids = read_integers(f, ids, kDefaultChunkRows);
  index_accounts(f, ids.name, t.account_ids);
  t.label = read_integers(f, label, kDefaultChunkRows);
  // Written by `ringscan generate`: what each account is (see AccountRole); optional.
  const Column role = f.column("/accounts/role", Numeric::Integer, 1, false);
  if (role.present()) {
    require_rows(f, role, accounts, ids.name);
    t.role = read_integers(f, role, kDefaultChunkRows);
  }
  // Also written by `ringscan generate`: how each ring works (see RingStyle); optional.
  const Column style = f.column("/accounts/ring_style", Numeric::Integer, 1, false);
  if (style.present()) {
    require_rows(f, style, accounts, ids.name);
    t.ring_style = read_integers(f, style, kDefaultChunkRows);
  }
  return t;
}

std::string read_file_format(const std::string& path) {
  const h5::QuietErrors quiet;
  const SourceFile f(path);
  return f.format();
}

OutputSummary describe_detection_output(const std::string& path) {
  const h5::QuietErrors quiet;
  const SourceFile f(path);
  f.check_identity("ringscan-output", "schema_version");
  OutputSummary s;
  s.path = path;
  // Attributes beyond this many are not ringscan's (it writes a few dozen).
  constexpr int64_t kMostAttributes = 4096;
  for (const std::string& name : f.root_attribute_names(kMostAttributes)) {
    const auto has_prefix = [&name](const char* p) { return name.rfind(p, 0) == 0; };
    if (name == "tool_version") s.tool_version = f.root_attribute_text(name);
    else if (name == "backend") s.backend = f.root_attribute_text(name);
    else if (name == "input") s.input = f.root_attribute_text(name);
    else if (has_prefix("param.")) {
      s.parameter_names.push_back(name.substr(6));
      s.parameter_values.push_back(f.root_attribute_text(name));
    } else if (has_prefix("time.") || has_prefix("stat.")) {
      const std::string text = f.root_attribute_text(name);
      char* end = nullptr;
      const double v = std::strtod(text.c_str(), &end);
      if (end == text.c_str() || *end != '\0') f.fail("attribute " + name, "expected a number, found \"" + text + "\"");
      (has_prefix("time.") ? s.timing_names : s.statistic_names).push_back(name.substr(5));
      (has_prefix("time.") ? s.timing_seconds : s.statistic_values).push_back(v);
    } else if (has_prefix("note.")) {
      s.notes.push_back(f.root_attribute_text(name));
    }
  }
  const Column ring = f.column("/accounts/ring", Numeric::Integer, 1, true);
  const std::vector<int64_t> labels = read_integers(f, ring, kDefaultChunkRows);
  s.accounts = int64_t(labels.size());
  for (const int64_t l : labels) s.accounts_in_rings += l >= 0;
  const Column id = f.column("/rings/id", Numeric::Integer, 1, true);
  const Column size = f.column("/rings/size", Numeric::Integer, 1, true);
  const Column score = f.column("/rings/score", Numeric::Float, 1, true);
  const Column shared = f.column("/rings/shared_prompt_strength", Numeric::Float, 1, true);
  require_rows(f, size, id.rows(), id.name);
  require_rows(f, score, id.rows(), id.name);
  require_rows(f, shared, id.rows(), id.name);
  s.ring_id = read_integers(f, id, kDefaultChunkRows);
  s.ring_size = read_integers(f, size, kDefaultChunkRows);
  allocate(s.ring_score, id.rows(), path + ": " + score.name);
  allocate(s.ring_shared, id.rows(), path + ": " + shared.name);
  f.read_rows(score, H5T_NATIVE_FLOAT, 0, id.rows(), s.ring_score.data());
  f.read_rows(shared, H5T_NATIVE_FLOAT, 0, id.rows(), s.ring_shared.data());
  return s;
}

namespace {

/// The account ids of a detect output (unique, indexed) and its integer account column `name`.
AccountIndex read_output_accounts(const SourceFile& f, const char* name, std::vector<int64_t>& ids,
                                  std::vector<int64_t>& column) {
  f.check_identity("ringscan-output", "schema_version");
  const Column id = f.column("/accounts/id", Numeric::Integer, 1, true);
  const Column c = f.column(name, Numeric::Integer, 1, true);
  require_rows(f, c, id.rows(), id.name);
  ids = read_integers(f, id, kDefaultChunkRows);
  AccountIndex index = index_accounts(f, id.name, ids);
  column = read_integers(f, c, kDefaultChunkRows);
  return index;
}

}  // namespace

DetectionLabels read_detection_labels(const std::string& path) {
  const h5::QuietErrors quiet;
  const SourceFile f(path);
  DetectionLabels labels;
  read_output_accounts(f, "/accounts/ring", labels.account_ids, labels.ring);
  const Column cluster = f.column("/accounts/cluster", Numeric::Integer, 1, true);
  require_rows(f, cluster, int64_t(labels.account_ids.size()), "/accounts/id");
  labels.cluster = read_integers(f, cluster, kDefaultChunkRows);
  return labels;
}

RingGraph read_ring_graph(const std::string& path) {
  const h5::QuietErrors quiet;
  const SourceFile f(path);
  RingGraph g;
  const AccountIndex index = read_output_accounts(f, "/accounts/ring", g.account_ids, g.ring);
  const int64_t A = int64_t(g.account_ids.size());
  const Column score = f.column("/accounts/ring_score", Numeric::Float, 1, true);
  require_rows(f, score, A, "/accounts/id");
  allocate(g.ring_score, A, path + ": " + score.name);
  f.read_rows(score, H5T_NATIVE_FLOAT, 0, A, g.ring_score.data());

  if (!f.column("/ring_edges/ring", Numeric::Integer, 1, false).present())
    f.fail("/ring_edges", "missing: the output was written by a version of ringscan without it; run detect again");
  const Column edge_ring = f.column("/ring_edges/ring", Numeric::Integer, 1, true);
  const int64_t E = edge_ring.rows();
  std::vector<Column> integer, real;
  for (const char* name : {"first", "second", "weak"})
    integer.push_back(f.column(std::string("/ring_edges/") + name, Numeric::Integer, 1, true));
  for (const char* name : {"shared_prompts", "synchrony", "behaviour", "infrastructure", "weight"})
    real.push_back(f.column(std::string("/ring_edges/") + name, Numeric::Float, 1, true));
  for (const Column* c : {&integer[0], &integer[1], &integer[2], &real[0], &real[1], &real[2], &real[3], &real[4]})
    require_rows(f, *c, E, edge_ring.name);
  const std::vector<int64_t> rings = read_integers(f, edge_ring, kDefaultChunkRows);
  std::vector<int64_t> first = read_integers(f, integer[0], kDefaultChunkRows);
  std::vector<int64_t> second = read_integers(f, integer[1], kDefaultChunkRows);
  const std::vector<int64_t> weak = read_integers(f, integer[2], kDefaultChunkRows);
  std::vector<std::vector<float>> values(real.size());
  for (std::size_t k = 0; k < real.size(); ++k) {
    allocate(values[k], E, path + ": " + real[k].name);
    f.read_rows(real[k], H5T_NATIVE_FLOAT, 0, E, values[k].data());
  }
  allocate(g.edges, E, path + ": " + edge_ring.name);
  for (int64_t e = 0; e < E; ++e) {
    const int64_t a = index.find(first[e]), b = index.find(second[e]);
    if (a < 0 || b < 0)
      f.fail(integer[a < 0 ? 0 : 1].name, "account " + std::to_string(a < 0 ? first[e] : second[e]) + " at row " +
                                              std::to_string(e) + " is not in /accounts/id");
    if (rings[e] < 0 || g.ring[a] != rings[e] || g.ring[b] != rings[e])
      f.fail(edge_ring.name, "row " + std::to_string(e) + " joins accounts outside ring " + std::to_string(rings[e]));
    g.edges[e] = {rings[e], std::min(a, b), std::max(a, b), values[0][e], values[1][e], values[2][e],
                  values[3][e], values[4][e], weak[e] != 0};
  }
  return g;
}

namespace {

std::vector<float> read_floats(const SourceFile& f, const Column& c) {
  std::vector<float> v;
  allocate(v, c.rows(), f.path() + ": " + c.name);
  f.read_rows(c, H5T_NATIVE_FLOAT, 0, c.rows(), v.data());
  return v;
}

/// The 1-D columns `names` of `group` (integers, or floats with `floats`), each required and
/// of `rows` rows, as the column `key` is.
template <class T>
std::vector<std::vector<T>> columns_of_one_length(const SourceFile& f, const std::string& group,
                                                  std::initializer_list<const char*> names, int64_t rows,
                                                  const std::string& key) {
  constexpr bool floats = std::is_same_v<T, float>;
  std::vector<std::vector<T>> out;
  for (const char* name : names) {
    const Column c = f.column(group + "/" + name, floats ? Numeric::Float : Numeric::Integer, 1, true);
    require_rows(f, c, rows, key);
    if constexpr (floats) out.push_back(read_floats(f, c));
    else out.push_back(read_integers(f, c, kDefaultChunkRows));
  }
  return out;
}

}  // namespace

std::vector<Ring> read_rings(const std::string& path) {
  const h5::QuietErrors quiet;
  const SourceFile f(path);
  std::vector<int64_t> account_ids, account_ring;
  read_output_accounts(f, "/accounts/ring", account_ids, account_ring);

  const Column id = f.column("/rings/id", Numeric::Integer, 1, true);
  const int64_t n = id.rows();
  const auto integer =
      columns_of_one_length<int64_t>(f, "/rings", {"id", "cluster", "size", "shared_groups"}, n, id.name);
  const auto real = columns_of_one_length<float>(
      f, "/rings", {"score", "shared_prompt_strength", "synchrony", "behaviour_tightness", "prompt_diversity", "volume"},
      n, id.name);
  std::vector<Ring> rings(static_cast<size_t>(n));  // n rows were read above
  for (int64_t r = 0; r < n; ++r) {
    // Rings are written ranked: the id is the rank, which the members' labels refer to.
    if (integer[0][r] != r) f.fail(id.name, "row " + std::to_string(r) + " holds ring " + std::to_string(integer[0][r]) + ", expected " + std::to_string(r) + " (rings are stored by rank)");
    Ring& x = rings[r];
    x.id = r;
    x.cluster = integer[1][r];
    x.size = integer[2][r];
    x.shared_groups = integer[3][r];
    x.score = real[0][r];
    x.shared_prompt_strength = real[1][r];
    x.synchrony = real[2][r];
    x.behaviour_tightness = real[3][r];
    x.prompt_diversity = real[4][r];
    x.volume = real[5][r];
  }
  for (std::size_t a = 0; a < account_ids.size(); ++a) {
    const int64_t r = account_ring[a];
    if (r < -1 || r >= n)
      f.fail("/accounts/ring", "row " + std::to_string(a) + " names ring " + std::to_string(r) + ", but /rings has " +
                                   std::to_string(n));
    if (r >= 0) rings[r].members.push_back(account_ids[a]);
  }
  for (Ring& x : rings) {
    std::sort(x.members.begin(), x.members.end());
    if (int64_t(x.members.size()) != x.size)
      f.fail("/rings/size", "ring " + std::to_string(x.id) + " has size " + std::to_string(x.size) + " but " +
                                std::to_string(x.members.size()) + " accounts in /accounts/ring");
  }

  // Shared prompt groups: absent from outputs of versions that did not write them.
  const Column prompt_ring = f.column("/ring_prompts/ring", Numeric::Integer, 1, false);
  if (!prompt_ring.present()) return rings;
  const int64_t p = prompt_ring.rows();
  const auto group = columns_of_one_length<int64_t>(
      f, "/ring_prompts", {"ring", "accounts_in_ring", "accounts_overall", "examples"}, p, prompt_ring.name);
  const std::vector<float> idf = columns_of_one_length<float>(f, "/ring_prompts", {"idf"}, p, prompt_ring.name)[0];
  const Column row_column = f.column("/ring_prompts/example_row", Numeric::Integer, 1, true);
  const std::vector<int64_t> example_rows = read_integers(f, row_column, kDefaultChunkRows);
  int64_t at = 0;
  for (int64_t g = 0; g < p; ++g) {
    const int64_t r = group[0][g], count = group[3][g];
    if (r < 0 || r >= n) f.fail(prompt_ring.name, "row " + std::to_string(g) + " names ring " + std::to_string(r) + ", but /rings has " + std::to_string(n));
    if (count < 0 || count > int64_t(example_rows.size()) - at)
      f.fail("/ring_prompts/examples", "row " + std::to_string(g) + ": " + std::to_string(count) + " examples, more than " + row_column.name + " holds");
    SharedPromptExample e;
    e.accounts_in_ring = group[1][g];
    e.accounts_overall = group[2][g];
    e.idf = idf[g];
    e.request_rows.assign(example_rows.begin() + at, example_rows.begin() + at + count);
    for (const int64_t row : e.request_rows)
      if (row < 0) f.fail(row_column.name, "negative request row " + std::to_string(row));
    at += count;
    rings[r].examples.push_back(std::move(e));
  }
  if (at != int64_t(example_rows.size()))
    f.fail(row_column.name, "has " + std::to_string(example_rows.size()) + " rows, /ring_prompts/examples counts " + std::to_string(at));
  return rings;
}

std::vector<std::string> read_request_texts(const std::string& path, const std::vector<int64_t>& rows) {
  const h5::QuietErrors quiet;
  const SourceFile f(path);
  f.check_identity("ringscan", "version");
  const InputLayout l = open_layout(f, false);
  if (!l.text.present()) return {};
  std::vector<int64_t> wanted = rows;
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  for (const int64_t row : wanted)
    if (row < 0 || row >= l.requests)
      f.fail(l.text.name, "row " + std::to_string(row) + " asked for, but the dataset has " +
                              std::to_string(l.requests) + " rows");
  std::vector<std::string> texts(wanted.size());
  // Every text is read and checked, in blocks, though only the wanted ones are kept.
  constexpr int64_t kTextBlock = 1024;  // at most 1 GiB of texts at once, at 1 MiB each
  size_t next = 0;
  for_each_chunk(l.requests, kTextBlock, [&](int64_t first, int64_t count) {
    std::vector<std::string> block = f.read_text_rows(l.text, first, count);
    for (; next < wanted.size() && wanted[next] < first + count; ++next)
      texts[next] = std::move(block[size_t(wanted[next] - first)]);
  });
  std::vector<std::string> out;
  out.reserve(rows.size());
  for (const int64_t row : rows)
    out.push_back(texts[size_t(std::lower_bound(wanted.begin(), wanted.end(), row) - wanted.begin())]);
  return out;
}

}  // namespace ringscan

namespace ringscan::detail {

int64_t first_non_finite_in_block(const float* values, int64_t n) {
  uint32_t any = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, values + i, sizeof bits);
    any |= uint32_t((bits & 0x7f800000u) == 0x7f800000u);
  }
  if (any != 0)
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(values[i])) return i;
  return n;
}

int64_t first_non_finite_in_block(const uint16_t* values, int64_t n) {
  uint32_t any = 0;
  for (int64_t i = 0; i < n; ++i) any |= uint32_t((values[i] & 0x7c00u) == 0x7c00u);
  if (any != 0)
    for (int64_t i = 0; i < n; ++i)
      if ((values[i] & 0x7c00u) == 0x7c00u) return i;
  return n;
}

std::string non_finite_problem(float value, int64_t row, int64_t column) {
  const char* what = std::isnan(value) ? "NaN" : (value > 0 ? "Inf" : "-Inf");
  return std::string("contains ") + what + " at row " + std::to_string(row) + ", column " + std::to_string(column);
}

}  // namespace ringscan::detail

// HDF5 input loading, validation of bad inputs, and atomic output writing.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "hdf5_handle.hpp"
#include "input_writer.hpp"
#include "ringscan/error.hpp"
#include "ringscan/io.hpp"

namespace ringscan {
namespace {

namespace fs = std::filesystem;

/// Expects fn() to throw E whose message contains every one of `parts`; returns the message.
template <class E, class Fn>
std::string expect_error(Fn&& fn, std::initializer_list<std::string> parts) {
  try {
    fn();
  } catch (const E& e) {
    const std::string message = e.what();
    for (const auto& part : parts)
      EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
    return message;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no exception thrown";
  return "";
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

/// Writes HDF5 objects with the raw C API, so that tests can build any malformed file.
class RawFile {
 public:
  explicit RawFile(const std::string& path)
      : id_(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)),
        links_(H5Pcreate(H5P_LINK_CREATE)) {
    EXPECT_GE(id_, 0);
    H5Pset_create_intermediate_group(links_, 1);
  }
  ~RawFile() {
    H5Pclose(links_);
    H5Fclose(id_);
  }
  RawFile(const RawFile&) = delete;
  RawFile& operator=(const RawFile&) = delete;

  hid_t id() const { return id_; }
  hid_t links() const { return links_; }

  /// A string attribute on the root group, fixed or variable length.
  void string_attribute(const char* name, const std::string& value, bool variable = false) {
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, variable ? H5T_VARIABLE : value.size() + 1);
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t attr = H5Acreate2(id_, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    const char* text = value.c_str();
    EXPECT_GE(H5Awrite(attr, type, variable ? static_cast<const void*>(&text) : text), 0);
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
  }
  void int_attribute(const char* name, int64_t value) {
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t attr = H5Acreate2(id_, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT_GE(H5Awrite(attr, H5T_NATIVE_INT64, &value), 0);
    H5Aclose(attr);
    H5Sclose(space);
  }
  /// Root attributes of a valid input file.
  void identity() {
    string_attribute("format", "ringscan");
    int_attribute("version", 1);
  }

  /// Creates dataset `name` of `file_type` and shape `dims`, writing `data` (if any) as `memtype`.
  void dataset(const char* name, hid_t file_type, const std::vector<hsize_t>& dims, hid_t memtype,
               const void* data, hid_t create = H5P_DEFAULT) {
    const hid_t space = H5Screate_simple(int(dims.size()), dims.data(), nullptr);
    const hid_t dset = H5Dcreate2(id_, name, file_type, space, links_, create, H5P_DEFAULT);
    ASSERT_GE(dset, 0) << name;
    if (data != nullptr) {
      EXPECT_GE(H5Dwrite(dset, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
    }
    H5Dclose(dset);
    H5Sclose(space);
  }
  void int64s(const char* name, const std::vector<int64_t>& v) {
    dataset(name, H5T_STD_I64LE, {v.size()}, H5T_NATIVE_INT64, v.data());
  }
  void floats(const char* name, const std::vector<float>& v, hsize_t width) {
    dataset(name, H5T_IEEE_F32LE, {v.size() / width, width}, H5T_NATIVE_FLOAT, v.data());
  }

 private:
  hid_t id_;
  hid_t links_;
};

/// The content of a small valid input file; tests break one part of it.
struct InputSpec {
  std::vector<int64_t> account{10, 20, 10, 30};
  hsize_t dim = 3;
  std::vector<float> embedding{1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0};
  std::vector<int64_t> ids{10, 20, 30};
  std::vector<float> features;  // [ids x feature_dim]
  hsize_t feature_dim = 2;

  void write_requests(RawFile& f) const {
    f.int64s("/requests/account", account);
    f.floats("/requests/embedding", embedding, dim);
  }
  void write_accounts(RawFile& f) const {
    if (!ids.empty()) f.int64s("/accounts/id", ids);
    if (!features.empty()) f.floats("/accounts/features", features, feature_dim);
  }
  /// A whole valid file.
  void write(const std::string& path) const {
    RawFile f(path);
    f.identity();
    write_requests(f);
    write_accounts(f);
  }
};

/// A fresh directory per test, removed afterwards.
class IoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "ringscan_io_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string file(const std::string& name) const { return dir_ + "/" + name; }
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) names.push_back(entry.path().filename());
    return names;
  }

  Context ctx_;
  std::string dir_;
};

class LoadDataset : public IoTest {};
class DescribeInput : public IoTest {};
class ReadTruthLabels : public IoTest {};
class WriteDetectionOutput : public IoTest {};
class ReadDetectionLabels : public IoTest {};
class WriteFileAtomically : public IoTest {};
class InputFileWriterTest : public IoTest {};

/// Writes `rows` requests of width `dim` (account i % 3 + 1, value sin(i * dim + j)) with time.
std::vector<float> write_writer_file(const std::string& path, int64_t rows, int64_t dim,
                                     EmbeddingType type) {
  std::vector<int64_t> account(rows), time(rows);
  std::vector<float> embedding(rows * dim);
  for (int64_t i = 0; i < rows; ++i) {
    account[i] = i % 3 + 1;
    time[i] = 1700000000 + i;
    for (int64_t j = 0; j < dim; ++j) embedding[i * dim + j] = float(std::sin(double(i * dim + j)));
  }
  InputFileWriter w(path, dim, type, true);
  w.append_requests(account.data(), embedding.data(), time.data(), rows);
  w.write_accounts({1, 2, 3, 4}, {0.5f, 1, 1.5f, 2, 2.5f, 3, 3.5f, 4}, 2, {"rate", "tokens"},
                   {7, 7, -1, -1});
  w.commit();
  return embedding;
}

TEST_F(LoadDataset, LoadsWhatInputFileWriterWrote) {
  const auto path = file("in.h5");
  const auto embedding = write_writer_file(path, 10, 4, EmbeddingType::Float32);
  const Dataset d = load_dataset(path, ctx_);
  EXPECT_EQ(d.source, path);
  EXPECT_EQ(d.account_ids, (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_FALSE(d.accounts_derived);
  ASSERT_EQ(d.num_requests(), 10);
  for (int64_t i = 0; i < 10; ++i) EXPECT_EQ(d.request_account[i], i % 3);
  EXPECT_EQ(d.dim, 4);
  EXPECT_EQ(d.embeddings, embedding);
  ASSERT_TRUE(d.has_time());
  EXPECT_EQ(d.request_time[9], 1700000009);
  EXPECT_EQ(d.feature_dim, 2);
  EXPECT_EQ(d.features, (std::vector<float>{0.5f, 1, 1.5f, 2, 2.5f, 3, 3.5f, 4}));
  EXPECT_EQ(d.feature_names, (std::vector<std::string>{"rate", "tokens"}));
  EXPECT_TRUE(d.labels.empty()) << "detect must not read ground truth";
  EXPECT_TRUE(d.request_infra.empty());
  EXPECT_TRUE(d.account_payment.empty());
}

TEST_F(LoadDataset, LoadsLabelsOnlyWhenAsked) {
  const auto path = file("in.h5");
  write_writer_file(path, 5, 2, EmbeddingType::Float32);
  LoadOptions options;
  options.load_labels = true;
  EXPECT_EQ(load_dataset(path, ctx_, options).labels, (std::vector<int64_t>{7, 7, -1, -1}));
}

TEST_F(LoadDataset, ReadsInChunksAndReportsProgress) {
  const auto path = file("in.h5");
  const auto embedding = write_writer_file(path, 10, 3, EmbeddingType::Float32);
  std::vector<int64_t> done;
  ctx_.progress = [&](const std::string& stage, int64_t d, int64_t total) {
    EXPECT_EQ(stage, "load");
    EXPECT_EQ(total, 10);
    done.push_back(d);
  };
  LoadOptions options;
  options.chunk_rows = 3;
  const Dataset d = load_dataset(path, ctx_, options);
  EXPECT_EQ(d.embeddings, embedding);
  EXPECT_EQ(done, (std::vector<int64_t>{0, 3, 6, 9, 10}));
}

TEST_F(LoadDataset, Float16RoundTripIsWithinTolerance) {
  const auto path = file("in.h5");
  const auto embedding = write_writer_file(path, 300, 7, EmbeddingType::Float16);
  const Dataset d = load_dataset(path, ctx_);
  ASSERT_EQ(d.embeddings.size(), embedding.size());
  for (size_t i = 0; i < embedding.size(); ++i)
    EXPECT_NEAR(d.embeddings[i], embedding[i], 1e-3) << i;

  // The fast float16 path must agree exactly with HDF5's own conversion of the stored values.
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t dset = H5Dopen2(f, "/requests/embedding", H5P_DEFAULT);
  const hid_t type = H5Dget_type(dset);
  EXPECT_EQ(H5Tget_size(type), 2u);
  std::vector<float> by_hdf5(embedding.size());
  ASSERT_GE(H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, by_hdf5.data()), 0);
  H5Tclose(type);
  H5Dclose(dset);
  H5Fclose(f);
  EXPECT_EQ(d.embeddings, by_hdf5);
}

TEST_F(LoadDataset, Float16RoundTripIsExactForEveryFiniteHalfValue) {
  // Reference values from HDF5's own float16 -> float conversion, independent of ours.
  const hid_t half = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_fields(half, 15, 10, 5, 0, 10);
  H5Tset_size(half, 2);
  H5Tset_ebias(half, 15);
  std::vector<uint16_t> bits;
  for (uint32_t b = 0; b < 0x10000; ++b)
    if ((b & 0x7c00u) != 0x7c00u) bits.push_back(uint16_t(b));  // skip Inf and NaN
  std::vector<float> values(bits.size());
  std::memcpy(values.data(), bits.data(), bits.size() * 2);
  ASSERT_GE(H5Tconvert(half, H5T_NATIVE_FLOAT, values.size(), values.data(), nullptr, H5P_DEFAULT),
            0);
  H5Tclose(half);

  const auto path = file("in.h5");
  const int64_t dim = 62;  // 63488 finite values = 1024 rows of 62
  const int64_t rows = int64_t(values.size()) / dim;
  ASSERT_EQ(rows * dim, int64_t(values.size()));
  std::vector<int64_t> account(rows, 5);
  {
    InputFileWriter w(path, dim, EmbeddingType::Float16, false);
    w.append_requests(account.data(), values.data(), nullptr, rows);
    w.commit();
  }
  const Dataset d = load_dataset(path, ctx_);
  ASSERT_EQ(d.embeddings.size(), values.size());
  EXPECT_EQ(std::memcmp(d.embeddings.data(), values.data(), values.size() * 4), 0);
}

TEST(Float16Conversion, BulkConversionAgreesWithTheScalarOneOnEveryBitPattern) {
  // The bulk conversion takes the F16C instruction path where the CPU has it; the scalar one
  // is what other CPUs run. Both must give the same bits (NaN: any NaN of the same sign).
  std::vector<uint16_t> bits(0x10000 + 5);  // a tail that is not a multiple of 8
  for (size_t b = 0; b < bits.size(); ++b) bits[b] = uint16_t(b);
  std::vector<float> bulk(bits.size());
  h5::half_to_float_n(bits.data(), bulk.data(), int64_t(bits.size()));
  for (size_t b = 0; b < bits.size(); ++b) {
    const float scalar = h5::half_to_float(bits[b]);
    if (std::isnan(scalar)) {
      EXPECT_TRUE(std::isnan(bulk[b])) << b;
      EXPECT_EQ(std::signbit(bulk[b]), std::signbit(scalar)) << b;
    } else {
      EXPECT_EQ(std::memcmp(&bulk[b], &scalar, 4), 0) << b << ": " << bulk[b] << " vs " << scalar;
    }
  }
}

TEST_F(LoadDataset, AcceptsFloat64EmbeddingsAndInt32Accounts) {
  const auto path = file("in.h5");
  {
    RawFile f(path);
    f.identity();
    const std::vector<int32_t> account{4, 5};
    f.dataset("/requests/account", H5T_STD_I32BE, {2}, H5T_NATIVE_INT32, account.data());
    const std::vector<double> embedding{0.25, -0.5, 1e-3, 2};
    f.dataset("/requests/embedding", H5T_IEEE_F64LE, {2, 2}, H5T_NATIVE_DOUBLE, embedding.data());
  }
  const Dataset d = load_dataset(path, ctx_);
  EXPECT_EQ(d.embeddings, (std::vector<float>{0.25f, -0.5f, 1e-3f, 2.0f}));
  EXPECT_EQ(d.account_ids, (std::vector<int64_t>{4, 5}));
}

TEST_F(LoadDataset, DerivesSortedUniqueAccountsWhenIdsAbsent) {
  const auto path = file("in.h5");
  InputSpec s;
  s.account = {30, 10, 30, 20};
  s.ids.clear();
  s.write(path);
  const Dataset d = load_dataset(path, ctx_);
  EXPECT_TRUE(d.accounts_derived);
  EXPECT_EQ(d.account_ids, (std::vector<int64_t>{10, 20, 30}));
  EXPECT_EQ(d.request_account, (std::vector<int64_t>{2, 0, 2, 1}));
}

TEST_F(LoadDataset, AcceptsZeroNormEmbeddingAndAccountWithoutRequests) {
  const auto path = file("in.h5");
  InputSpec s;
  s.embedding[0] = 0;  // row 0 becomes all zeros
  s.ids = {10, 20, 30, 40};
  s.write(path);
  const Dataset d = load_dataset(path, ctx_);
  EXPECT_EQ(d.num_accounts(), 4);
  EXPECT_EQ(d.embeddings[0] + d.embeddings[1] + d.embeddings[2], 0.0f);
}

TEST_F(LoadDataset, AcceptsFileWithoutRequests) {
  const auto path = file("in.h5");
  {
    InputFileWriter w(path, 8, EmbeddingType::Float16, true);
    w.write_accounts({1, 2}, {}, 0, {}, {});
    w.commit();
  }
  const Dataset d = load_dataset(path, ctx_);
  EXPECT_EQ(d.num_requests(), 0);
  EXPECT_EQ(d.dim, 8);
  EXPECT_EQ(d.num_accounts(), 2);
}

TEST_F(LoadDataset, RejectsMissingFile) {
  const auto path = file("absent.h5");
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); }, {path, "No such file"});
}

TEST_F(LoadDataset, RejectsTextFileAsNotHdf5) {
  const auto path = file("notes.txt");
  write_text(path, "account,embedding\n1,0.5\n");
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); }, {path, "not an HDF5 file"});
}

TEST_F(LoadDataset, RejectsEmptyFile) {
  const auto path = file("empty.h5");
  write_text(path, "");
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); }, {path, "empty"});
}

TEST_F(LoadDataset, RejectsTruncatedFile) {
  const auto path = file("in.h5");
  write_writer_file(path, 2000, 16, EmbeddingType::Float32);
  const auto size = fs::file_size(path);
  fs::resize_file(path, size / 2);
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); }, {path});
}

TEST_F(LoadDataset, RejectsFileTruncatedAtAnyPoint) {
  const auto path = file("in.h5");
  write_writer_file(path, 50, 4, EmbeddingType::Float16);
  const std::string bytes = read_bytes(path);
  for (size_t keep = 1; keep < bytes.size(); keep += bytes.size() / 23 + 1) {
    write_text(path, bytes.substr(0, keep));
    expect_error<InvalidInput>([&] { load_dataset(path, ctx_); }, {path});
  }
}

TEST_F(LoadDataset, RejectsWrongFormatAttribute) {
  const auto path = file("in.h5");
  {
    RawFile f(path);
    f.string_attribute("format", "other");
    f.int_attribute("version", 1);
    InputSpec().write_requests(f);
  }
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); },
                             {path, "attribute format", "\"other\""});
}

TEST_F(LoadDataset, RejectsMissingFormatAttribute) {
  const auto path = file("in.h5");
  {
    RawFile f(path);
    f.int_attribute("version", 1);
    InputSpec().write_requests(f);
  }
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); },
                             {path, "attribute format", "missing"});
}

TEST_F(LoadDataset, RejectsDetectionOutputAsInput) {
  const auto path = file("out.h5");
  {
    RawFile f(path);
    f.string_attribute("format", "ringscan-output");
    f.int_attribute("schema_version", 1);
  }
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); },
                             {path, "attribute format", "detection output"});
}

TEST_F(LoadDataset, AcceptsVariableLengthFormatString) {
  const auto path = file("in.h5");
  {
    RawFile f(path);
    f.string_attribute("format", "ringscan", true);
    f.int_attribute("version", 1);
    InputSpec().write_requests(f);
  }
  EXPECT_EQ(load_dataset(path, ctx_).num_requests(), 4);
}

TEST_F(LoadDataset, RejectsWrongVersion) {
  const auto path = file("in.h5");
  {
    RawFile f(path);
    f.string_attribute("format", "ringscan");
    f.int_attribute("version", 2);
    InputSpec().write_requests(f);
  }
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); },
                             {path, "attribute version", "is 2"});
}

TEST_F(LoadDataset, RejectsMissingEmbedding) {
  const auto path = file("in.h5");
  {
    RawFile f(path);
    f.identity();
    f.int64s("/requests/account", {1, 2});
  }
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); },
                             {path, "/requests/embedding", "missing"});
}

TEST_F(LoadDataset, RejectsEmbeddingOfWrongRank) {
  const auto path = file("in.h5");
  {
    RawFile f(path);
    f.identity();
    f.int64s("/requests/account", {1, 2});
    const std::vector<float> flat{1, 2};
    f.dataset("/requests/embedding", H5T_IEEE_F32LE, {2}, H5T_NATIVE_FLOAT, flat.data());
  }
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); },
                             {path, "/requests/embedding", "expected rank 2", "found rank 1"});
}

TEST_F(LoadDataset, RejectsDatasetWhereAGroupBelongs) {
  const auto path = file("in.h5");
  {
    RawFile f(path);
    f.identity();
    InputSpec().write_requests(f);
    f.int64s("/accounts", {1, 2});
  }
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); },
                             {path, "/accounts", "expected a group, found a dataset"});
}

TEST_F(LoadDataset, TreatsZeroWidthFeaturesAsAbsent) {
  const auto path = file("in.h5");
  {
    RawFile f(path);
    f.identity();
    InputSpec s;
    s.write_requests(f);
    s.write_accounts(f);
    f.dataset("/accounts/features", H5T_IEEE_F32LE, {3, 0}, H5T_NATIVE_FLOAT, nullptr);
  }
  const Dataset d = load_dataset(path, ctx_);
  EXPECT_FALSE(d.has_features());
  EXPECT_TRUE(d.features.empty());
}

TEST_F(LoadDataset, RejectsStringDatasetAsNonNumeric) {
  const auto path = file("in.h5");
  {
    RawFile f(path);
    f.identity();
    InputSpec().write_requests(f);
    const hid_t text = H5Tcopy(H5T_C_S1);
    H5Tset_size(text, 8);
    const char times[4][8] = {"monday", "monday", "tuesday", "friday"};
    f.dataset("/requests/time", text, {4}, text, times);
    H5Tclose(text);
  }
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); },
                             {path, "/requests/time", "expected a numeric type, found string"});
}

TEST_F(LoadDataset, RejectsFloatAccountIds) {
  const auto path = file("in.h5");
  {
    RawFile f(path);
    f.identity();
    const std::vector<float> account{1, 2};
    f.dataset("/requests/account", H5T_IEEE_F32LE, {2}, H5T_NATIVE_FLOAT, account.data());
    f.floats("/requests/embedding", {1, 2}, 1);
  }
  expect_error<InvalidInput>(
      [&] { load_dataset(path, ctx_); },
      {path, "/requests/account", "expected an integer type, found float32"});
}

TEST_F(LoadDataset, RejectsRowCountMismatchBetweenAccountAndEmbedding) {
  const auto path = file("in.h5");
  InputSpec s;
  s.account.push_back(10);  // 5 accounts, 4 embedding rows
  s.write(path);
  expect_error<InvalidInput>(
      [&] { load_dataset(path, ctx_); },
      {path, "/requests/embedding", "has 4 rows", "/requests/account has 5"});
}

TEST_F(LoadDataset, RejectsNanInEmbeddingNamingTheRow) {
  const auto path = file("in.h5");
  InputSpec s;
  s.embedding[2 * 3 + 1] = std::nanf("");
  s.write(path);
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); },
                             {path, "/requests/embedding", "contains NaN at row 2"});
}

TEST_F(LoadDataset, RejectsNanInALaterChunk) {
  const auto path = file("in.h5");
  InputSpec s;
  s.embedding[3 * 3 + 2] = std::nanf("");
  s.write(path);
  LoadOptions options;
  options.chunk_rows = 2;
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_, options); },
                             {path, "/requests/embedding", "contains NaN at row 3, column 2"});
}

TEST_F(LoadDataset, RejectsInfInFeaturesNamingTheRow) {
  const auto path = file("in.h5");
  InputSpec s;
  s.features = {0, 1, 2, 3, INFINITY, 5};
  s.write(path);
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); },
                             {path, "/accounts/features", "contains Inf at row 2"});
}

TEST_F(LoadDataset, RejectsFloat64EmbeddingBeyondFloat32Range) {
  const auto path = file("in.h5");
  {
    RawFile f(path);
    f.identity();
    f.int64s("/requests/account", {1, 2});
    const std::vector<double> embedding{0.5, 1e300};
    f.dataset("/requests/embedding", H5T_IEEE_F64LE, {2, 1}, H5T_NATIVE_DOUBLE, embedding.data());
  }
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); },
                             {path, "/requests/embedding", "out of the range of float32"});
}

TEST_F(LoadDataset, RejectsUint64AccountIdBeyondInt64) {
  const auto path = file("in.h5");
  {
    RawFile f(path);
    f.identity();
    const std::vector<uint64_t> account{1, (uint64_t{1} << 63) + 5};
    f.dataset("/requests/account", H5T_STD_U64LE, {2}, H5T_NATIVE_UINT64, account.data());
    f.floats("/requests/embedding", {1, 2}, 1);
  }
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); },
                             {path, "/requests/account", "out of the range of int64"});
}

TEST_F(LoadDataset, RejectsRequestWithUnknownAccount) {
  const auto path = file("in.h5");
  InputSpec s;
  s.account[3] = 99;
  s.write(path);
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); },
                             {path, "/requests/account", "account 99 at row 3", "/accounts/id"});
}

TEST_F(LoadDataset, RejectsDuplicateAccountIds) {
  const auto path = file("in.h5");
  InputSpec s;
  s.ids = {10, 20, 30, 20};
  s.write(path);
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); },
                             {path, "/accounts/id", "duplicate account id 20 at rows 1 and 3"});
}

TEST_F(LoadDataset, RejectsFeaturesWithoutAccountIds) {
  const auto path = file("in.h5");
  InputSpec s;
  s.ids.clear();
  s.features = {1, 2, 3, 4, 5, 6};
  s.write(path);
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); },
                             {path, "/accounts/features", "without /accounts/id"});
}

/// Writes attribute `names` of fixed-length strings on /accounts/features.
void write_fixed_names(const std::string& path, const std::vector<std::string>& names,
                       const char* attribute = "names") {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  const hid_t dset = H5Dopen2(f, "/accounts/features", H5P_DEFAULT);
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, 6);
  H5Tset_strpad(type, H5T_STR_SPACEPAD);
  std::string packed;
  for (const auto& n : names) packed += n + std::string(6 - n.size(), ' ');
  const hsize_t count = names.size();
  const hid_t space = H5Screate_simple(1, &count, nullptr);
  const hid_t attr = H5Acreate2(dset, attribute, type, space, H5P_DEFAULT, H5P_DEFAULT);
  EXPECT_GE(H5Awrite(attr, type, packed.data()), 0);
  H5Aclose(attr);
  H5Sclose(space);
  H5Tclose(type);
  H5Dclose(dset);
  H5Fclose(f);
}

TEST_F(LoadDataset, ReadsFixedLengthFeatureNames) {
  const auto path = file("in.h5");
  InputSpec s;
  s.features = {1, 2, 3, 4, 5, 6};
  s.write(path);
  write_fixed_names(path, {"rate", "len"});
  EXPECT_EQ(load_dataset(path, ctx_).feature_names, (std::vector<std::string>{"rate", "len"}));
}

TEST_F(LoadDataset, ReadsWhichFeatureColumnsAreCategorical) {
  const auto path = file("in.h5");
  InputSpec s;
  s.features = {1, 2, 3, 4, 5, 6};
  s.write(path);
  write_fixed_names(path, {"rate", "client"});
  write_fixed_names(path, {"client"}, "categorical");
  EXPECT_EQ(load_dataset(path, ctx_).feature_categorical, (std::vector<uint8_t>{0, 1}));
}

TEST_F(LoadDataset, RejectsACategoricalColumnThatIsNotNamed) {
  const auto path = file("in.h5");
  InputSpec s;
  s.features = {1, 2, 3, 4, 5, 6};
  s.write(path);
  write_fixed_names(path, {"rate", "len"});
  write_fixed_names(path, {"client"}, "categorical");
  expect_error<InvalidInput>(
      [&] { load_dataset(path, ctx_); },
      {path, "/accounts/features attribute categorical", "'client' is not one of the columns in names"});
}

TEST_F(LoadDataset, RejectsFeatureNamesOfWrongCount) {
  const auto path = file("in.h5");
  InputSpec s;
  s.features = {1, 2, 3, 4, 5, 6};
  s.write(path);
  write_fixed_names(path, {"a", "b", "c"});
  expect_error<InvalidInput>(
      [&] { load_dataset(path, ctx_); },
      {path, "/accounts/features attribute names", "has 3 entries, expected 2"});
}

/// Writes attribute `names` of variable-length strings on dataset `name` of `path`.
void write_names(const std::string& path, const char* name, const std::vector<std::string>& names) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  const hid_t dset = H5Dopen2(f, name, H5P_DEFAULT);
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  std::vector<const char*> ptrs;
  for (const auto& n : names) ptrs.push_back(n.c_str());
  const hsize_t count = names.size();
  const hid_t space = H5Screate_simple(1, &count, nullptr);
  const hid_t attr = H5Acreate2(dset, "names", type, space, H5P_DEFAULT, H5P_DEFAULT);
  EXPECT_GE(H5Awrite(attr, type, ptrs.data()), 0);
  H5Aclose(attr);
  H5Sclose(space);
  H5Tclose(type);
  H5Dclose(dset);
  H5Fclose(f);
}

/// InputSpec's file with /requests/infra [4, 2] and /accounts/payment and /accounts/created.
void write_infra_file(const std::string& path, const std::vector<int64_t>& created = {1700000000, 0, 1700003600}) {
  InputSpec s;
  RawFile f(path);
  f.identity();
  s.write_requests(f);
  s.write_accounts(f);
  const std::vector<int64_t> infra{7, 100, 8, 100, 7, 0, 9, 101};
  f.dataset("/requests/infra", H5T_STD_I64LE, {4, 2}, H5T_NATIVE_INT64, infra.data());
  f.int64s("/accounts/payment", {0, 55, 55});
  f.int64s("/accounts/created", created);
}

TEST_F(LoadDataset, ReadsInfrastructureTokensOfSeveralKindsPaymentAndSignUp) {
  const auto path = file("in.h5");
  write_infra_file(path);
  write_names(path, "/requests/infra", {"ip24", "asn"});
  const Dataset d = load_dataset(path, ctx_);
  EXPECT_EQ(d.infra_dim, 2);
  EXPECT_EQ(d.infra_names, (std::vector<std::string>{"ip24", "asn"}));
  EXPECT_EQ(d.request_infra, (std::vector<int64_t>{7, 100, 8, 100, 7, 0, 9, 101}));
  EXPECT_EQ(d.account_payment, (std::vector<int64_t>{0, 55, 55}));
  EXPECT_EQ(d.account_created, (std::vector<int64_t>{1700000000, 0, 1700003600}));
  const InputSummary summary = describe_input(path, ctx_);
  EXPECT_TRUE(summary.has_infra && summary.has_payment && summary.has_created);
  EXPECT_EQ(summary.infra_names, d.infra_names);
}

TEST_F(LoadDataset, NamesInfrastructureColumnsTheFileLeavesUnnamed) {
  const auto path = file("in.h5");
  write_infra_file(path);
  EXPECT_EQ(load_dataset(path, ctx_).infra_names, (std::vector<std::string>{"infra0", "infra1"}));
  {
    InputSpec s;
    RawFile f(path);
    f.identity();
    s.write_requests(f);
    s.write_accounts(f);
    f.int64s("/requests/infra", {1, 2, 1, 0});
  }
  const Dataset d = load_dataset(path, ctx_);
  EXPECT_EQ(d.infra_dim, 1);
  EXPECT_EQ(d.infra_names, (std::vector<std::string>{"infra"}));
}

TEST_F(LoadDataset, RejectsANegativeSignUpTimeNamingTheRow) {
  const auto path = file("in.h5");
  write_infra_file(path, {1700000000, -5, 0});
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); }, {path, "/accounts/created", "row 1", "negative"});
}

TEST_F(LoadDataset, RejectsInfrastructureNamesOfWrongCountOrRepeated) {
  const auto path = file("in.h5");
  write_infra_file(path);
  write_names(path, "/requests/infra", {"ip24", "asn", "key"});
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); },
                             {path, "/requests/infra attribute names", "has 3 entries, expected 2"});
  write_infra_file(path);
  write_names(path, "/requests/infra", {"ip24", "ip24"});
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); }, {path, "/requests/infra", "'ip24' names two columns"});
}

TEST_F(LoadDataset, RejectsInfrastructureOfRankThreeOrOfOtherRowCount) {
  const auto path = file("in.h5");
  {
    InputSpec s;
    RawFile f(path);
    f.identity();
    s.write_requests(f);
    s.write_accounts(f);
    const std::vector<int64_t> cube(8, 1);
    f.dataset("/requests/infra", H5T_STD_I64LE, {4, 1, 2}, H5T_NATIVE_INT64, cube.data());
  }
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); }, {path, "/requests/infra", "expected rank 1", "or 2"});
  {
    InputSpec s;
    RawFile f(path);
    f.identity();
    s.write_requests(f);
    s.write_accounts(f);
    f.int64s("/requests/infra", {1, 2, 3});
  }
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); }, {path, "/requests/infra"});
}

TEST_F(LoadDataset, RejectsSignUpTimesWithoutAccountIds) {
  const auto path = file("in.h5");
  {
    InputSpec s;
    RawFile f(path);
    f.identity();
    s.write_requests(f);
    f.int64s("/accounts/created", {1, 2, 3});
  }
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); }, {path, "/accounts/created", "without /accounts/id"});
}

/// Writes /requests/account [rows] and /requests/embedding [rows, dim] as chunked datasets
/// without data: HDF5 stores only the declared shape.
void write_declared_only(RawFile& f, hsize_t rows, hsize_t dim) {
  const hid_t create = H5Pcreate(H5P_DATASET_CREATE);
  const hsize_t account_chunk = 1024;
  H5Pset_chunk(create, 1, &account_chunk);
  f.dataset("/requests/account", H5T_STD_I64LE, {rows}, H5T_NATIVE_INT64, nullptr, create);
  const hsize_t embedding_chunk[2] = {64, std::min<hsize_t>(dim, 1024)};
  H5Pset_chunk(create, 2, embedding_chunk);
  f.dataset("/requests/embedding", H5T_IEEE_F32LE, {rows, dim}, H5T_NATIVE_FLOAT, nullptr, create);
  H5Pclose(create);
}

TEST_F(LoadDataset, RejectsDeclaredShapeOverBudget) {
  const auto path = file("huge.h5");
  {
    RawFile f(path);
    f.identity();
    write_declared_only(f, hsize_t{1} << 40, 384);
  }
  ctx_.memory_budget = int64_t{1} << 30;
  expect_error<BudgetExceeded>([&] { load_dataset(path, ctx_); },
                               {path, "/requests/embedding", "memory budget"});
}

TEST_F(LoadDataset, RejectsDeclaredShapeWhoseByteCountOverflowsEvenWithoutBudget) {
  const auto path = file("huge.h5");
  {
    RawFile f(path);
    f.identity();
    write_declared_only(f, hsize_t{1} << 50, hsize_t{1} << 12);
  }
  ctx_.memory_budget = 0;
  expect_error<BudgetExceeded>([&] { load_dataset(path, ctx_); },
                               {path, "/requests/embedding", "overflow"});
}

TEST_F(LoadDataset, RefusesExternalLink) {
  const auto other = file("other.h5");
  InputSpec().write(other);
  const auto path = file("in.h5");
  {
    RawFile f(path);
    f.identity();
    f.int64s("/requests/account", InputSpec().account);
    ASSERT_GE(H5Lcreate_external(other.c_str(), "/requests/embedding", f.id(),
                                 "/requests/embedding", f.links(), H5P_DEFAULT),
              0);
  }
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); },
                             {path, "/requests/embedding", "external link refused"});
}

TEST_F(LoadDataset, RefusesSoftLink) {
  const auto path = file("in.h5");
  {
    RawFile f(path);
    f.identity();
    InputSpec s;
    s.write_requests(f);
    f.int64s("/elsewhere/time", {1, 2, 3, 4});
    ASSERT_GE(H5Lcreate_soft("/elsewhere/time", f.id(), "/requests/time", f.links(), H5P_DEFAULT),
              0);
  }
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); },
                             {path, "/requests/time", "soft link refused"});
}

TEST_F(LoadDataset, RefusesExternalRawDataStorage) {
  const auto path = file("in.h5");
  {
    RawFile f(path);
    f.identity();
    InputSpec s;
    f.int64s("/requests/account", s.account);
    const hid_t create = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_external(create, file("raw.bin").c_str(), 0, s.embedding.size() * 4);
    f.dataset("/requests/embedding", H5T_NATIVE_FLOAT, {4, 3}, H5T_NATIVE_FLOAT, s.embedding.data(),
              create);
    H5Pclose(create);
  }
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_); },
                             {path, "/requests/embedding", "external raw data storage refused"});
}

TEST_F(LoadDataset, RejectsNonPositiveChunkRows) {
  const auto path = file("in.h5");
  InputSpec().write(path);
  LoadOptions options;
  options.chunk_rows = 0;
  expect_error<InvalidInput>([&] { load_dataset(path, ctx_, options); }, {path, "chunk_rows"});
}

TEST_F(DescribeInput, SummarisesTypesShapesAndStatistics) {
  const auto path = file("in.h5");
  std::vector<int64_t> account{1, 1, 2};
  std::vector<int64_t> time{100, 50, 70};
  std::vector<float> embedding{0, 0, 1, 1, 0.5f, 0};
  {
    InputFileWriter w(path, 2, EmbeddingType::Float16, true);
    w.append_requests(account.data(), embedding.data(), time.data(), 3);
    w.write_accounts({1, 2, 3}, {}, 0, {}, {4, -1, 4});
    w.commit();
  }
  const InputSummary s = describe_input(path, ctx_);
  EXPECT_EQ(s.path, path);
  EXPECT_EQ(s.version, 1);
  EXPECT_EQ(s.num_requests, 3);
  EXPECT_EQ(s.num_accounts, 3);
  EXPECT_EQ(s.dim, 2);
  EXPECT_TRUE(s.has_time);
  EXPECT_FALSE(s.has_features);
  EXPECT_TRUE(s.has_labels);
  EXPECT_EQ(s.time_min, 50);
  EXPECT_EQ(s.time_max, 100);
  EXPECT_EQ(s.labelled_rings, 1);
  EXPECT_EQ(s.labelled_accounts, 2);
  EXPECT_EQ(s.accounts_without_requests, 1);
  EXPECT_EQ(s.zero_norm_embeddings, 1);
  EXPECT_EQ(s.memory_bytes, 3 * 2 * 4 + 3 * 8 * 2 + 3 * 8);
  ASSERT_EQ(s.datasets.size(), 5u);
  EXPECT_EQ(s.datasets[1].name, "/requests/embedding");
  EXPECT_EQ(s.datasets[1].type, "float16");
  EXPECT_EQ(s.datasets[1].shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(s.datasets[0].type, "int64");
}

TEST_F(ReadTruthLabels, ReadsIdsAndLabels) {
  const auto path = file("in.h5");
  write_writer_file(path, 5, 2, EmbeddingType::Float32);
  const TruthLabels t = read_truth_labels(path, ctx_);
  EXPECT_EQ(t.account_ids, (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(t.label, (std::vector<int64_t>{7, 7, -1, -1}));
}

TEST_F(ReadTruthLabels, RejectsFileWithoutLabels) {
  const auto path = file("in.h5");
  InputSpec().write(path);
  expect_error<InvalidInput>([&] { read_truth_labels(path, ctx_); },
                             {path, "/accounts/label", "ground truth needed for evaluate"});
}

DetectionResult sample_result() {
  DetectionResult r;
  r.account_ids = {11, 12, 13, 14};
  r.cluster = {0, 0, -1, 1};
  r.ring = {0, 0, -1, -1};
  r.ring_score = {0.9f, 0.9f, 0, 0};
  Ring ring;
  ring.id = 0;
  ring.cluster = 0;
  ring.size = 2;
  ring.score = 0.9f;
  ring.synchrony = 0.75f;
  ring.volume = 40;
  ring.members = {11, 12};
  r.rings = {ring};
  r.backend = "cpu";
  r.parameters = {{"threshold", "0.92"}, {"k", "16"}};
  r.stage_seconds = {{"load", 0.5}};
  r.statistics = {{"edges", 12}};
  r.input_path = "in.h5";
  return r;
}

/// Reads a scalar string attribute of the root group through HDF5 directly.
std::string root_string_attribute(hid_t file, const char* name) {
  const hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
  const hid_t type = H5Aget_type(attr);
  std::string value(H5Tget_size(type), '\0');
  EXPECT_GE(H5Aread(attr, type, value.data()), 0);
  H5Tclose(type);
  H5Aclose(attr);
  return value.c_str();
}

double root_double_attribute(hid_t file, const char* name) {
  double value = -1;
  const hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
  EXPECT_GE(H5Aread(attr, H5T_NATIVE_DOUBLE, &value), 0) << name;
  H5Aclose(attr);
  return value;
}

TEST_F(WriteDetectionOutput, WritesFileThatReadDetectionLabelsReturns) {
  const auto path = file("out.h5");
  const DetectionResult r = sample_result();
  write_detection_output(path, r);
  const DetectionLabels labels = read_detection_labels(path);
  EXPECT_EQ(labels.account_ids, r.account_ids);
  EXPECT_EQ(labels.cluster, r.cluster);
  EXPECT_EQ(labels.ring, r.ring);
  EXPECT_EQ(listing(), std::vector<std::string>{"out.h5"});

  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  EXPECT_EQ(root_string_attribute(f, "format"), "ringscan-output");
  EXPECT_EQ(root_string_attribute(f, "tool_version"), RINGSCAN_VERSION);
  EXPECT_EQ(root_string_attribute(f, "param.threshold"), "0.92");
  EXPECT_EQ(root_string_attribute(f, "backend"), "cpu");
  EXPECT_EQ(root_double_attribute(f, "time.load"), 0.5);
  EXPECT_EQ(root_double_attribute(f, "stat.edges"), 12);
  const hid_t sync = H5Dopen2(f, "/rings/synchrony", H5P_DEFAULT);
  float synchrony = 0;
  H5Dread(sync, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, &synchrony);
  EXPECT_EQ(synchrony, 0.75f);
  H5Dclose(sync);
  H5Fclose(f);
}

TEST_F(WriteDetectionOutput, WritesEmptyRingTablesWhenThereAreNoRings) {
  const auto path = file("out.h5");
  DetectionResult r = sample_result();
  r.rings.clear();
  write_detection_output(path, r);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  for (const char* name : {"/rings/id", "/rings/size", "/rings/score", "/rings/volume"}) {
    const hid_t dset = H5Dopen2(f, name, H5P_DEFAULT);
    ASSERT_GE(dset, 0) << name;
    const hid_t space = H5Dget_space(dset);
    EXPECT_EQ(H5Sget_simple_extent_npoints(space), 0) << name;
    H5Sclose(space);
    H5Dclose(dset);
  }
  H5Fclose(f);
}

TEST_F(WriteDetectionOutput, LeavesExistingFileByteIdenticalOnFailure) {
  const auto path = file("out.h5");
  write_detection_output(path, sample_result());
  const std::string before = read_bytes(path);
  DetectionResult broken = sample_result();
  broken.ring.pop_back();
  expect_error<InternalError>([&] { write_detection_output(path, broken); },
                              {path, "ring has 3 entries"});
  EXPECT_EQ(read_bytes(path), before);
  EXPECT_EQ(listing(), std::vector<std::string>{"out.h5"});
}

TEST_F(WriteDetectionOutput, RemovesTemporaryFileWhenRenameFails) {
  const auto path = file("taken");
  fs::create_directory(path);  // rename() of a file onto a directory fails
  expect_error<InternalError>([&] { write_detection_output(path, sample_result()); },
                              {path, "rename"});
  EXPECT_EQ(listing(), std::vector<std::string>{"taken"});
}

TEST_F(ReadDetectionLabels, RejectsInputFile) {
  const auto path = file("in.h5");
  InputSpec().write(path);
  expect_error<InvalidInput>([&] { read_detection_labels(path); },
                             {path, "attribute format", "input file, not a detection output"});
}

TEST_F(ReadDetectionLabels, RejectsMissingRingColumn) {
  const auto path = file("out.h5");
  {
    RawFile f(path);
    f.string_attribute("format", "ringscan-output");
    f.int_attribute("schema_version", 1);
    f.int64s("/accounts/id", {1, 2});
    f.int64s("/accounts/cluster", {0, 0});
  }
  expect_error<InvalidInput>([&] { read_detection_labels(path); },
                             {path, "/accounts/ring", "missing"});
}

TEST_F(WriteFileAtomically, ReplacesContentWithoutLeavingTemporaryFiles) {
  const auto path = file("report.json");
  write_text(path, "old");
  write_file_atomically(path, "{\"rings\": []}\n");
  EXPECT_EQ(read_bytes(path), "{\"rings\": []}\n");
  EXPECT_EQ(listing(), std::vector<std::string>{"report.json"});
}

TEST_F(WriteFileAtomically, ThrowsNamingThePathWhenTheDirectoryIsMissing) {
  const auto path = file("missing/report.json");
  expect_error<InternalError>([&] { write_file_atomically(path, "x"); }, {path, "No such file"});
}

TEST_F(InputFileWriterTest, RemovesTemporaryFileWhenNotCommitted) {
  const auto path = file("in.h5");
  {
    InputFileWriter w(path, 2, EmbeddingType::Float32, false);
    const int64_t account = 1;
    const float embedding[2] = {1, 2};
    w.append_requests(&account, embedding, nullptr, 1);
    EXPECT_EQ(listing().size(), 1u);  // the temporary file
  }
  EXPECT_TRUE(listing().empty());
}

TEST_F(InputFileWriterTest, AppendsAcrossChunkBoundaries) {
  const auto path = file("in.h5");
  const int64_t dim = 4;
  std::vector<float> all;
  std::vector<int64_t> all_accounts;
  {
    InputFileWriter w(path, dim, EmbeddingType::Float32, false);
    for (const int64_t n : {5000, 1, 3000}) {
      std::vector<int64_t> account(n);
      std::vector<float> embedding(n * dim);
      for (int64_t i = 0; i < n; ++i) account[i] = int64_t(all_accounts.size() + i) % 7;
      for (int64_t i = 0; i < n * dim; ++i) embedding[i] = float(all.size() + i);
      w.append_requests(account.data(), embedding.data(), nullptr, n);
      all.insert(all.end(), embedding.begin(), embedding.end());
      all_accounts.insert(all_accounts.end(), account.begin(), account.end());
    }
    w.commit();
  }
  const Dataset d = load_dataset(path, ctx_);
  EXPECT_EQ(d.embeddings, all);
  EXPECT_TRUE(d.accounts_derived);
  ASSERT_EQ(d.num_requests(), int64_t(all_accounts.size()));
  for (size_t i = 0; i < all_accounts.size(); ++i)
    EXPECT_EQ(d.account_ids[d.request_account[i]], all_accounts[i]);
}

TEST_F(InputFileWriterTest, RejectsValuesBeyondFloat16RangeAndRefusesToCommit) {
  const auto path = file("in.h5");
  InputFileWriter w(path, 1, EmbeddingType::Float16, false);
  const int64_t account[2] = {1, 2};
  const float embedding[2] = {0.5f, 1e6f};
  expect_error<InternalError>([&] { w.append_requests(account, embedding, nullptr, 2); },
                              {path, "/requests/embedding", "row 1", "float16 range"});
  expect_error<InternalError>([&] { w.commit(); }, {path, "earlier failure"});
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace ringscan

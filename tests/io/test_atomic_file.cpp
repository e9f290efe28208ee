#include "resnet/io/atomic_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "io_test_util.h"
#include "resnet/core/error.h"
#include "resnet/io/npy.h"
#include "resnet/io/safetensors.h"

namespace resnet::io {
namespace {

using testing::read_bytes;
using testing::TempDir;
using testing::write_bytes;

class AtomicFileTest : public ::testing::Test {
 protected:
  TempDir dir_;
};

TEST_F(AtomicFileTest, ReplacesContentAndLeavesNoTempFile) {
  std::string path = dir_.file("out.bin");
  write_bytes(path, "old content");
  write_file_atomic(path, std::string("new\0content", 11));
  EXPECT_EQ(read_bytes(path), std::string("new\0content", 11));
  EXPECT_EQ(dir_.entries(), std::vector<std::string>{"out.bin"});
}

TEST_F(AtomicFileTest, CreatesNewFileInRelativeDirectory) {
  // A bare file name means the current directory.
  auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir_.path());
  write_file_atomic("bare.bin", "x");
  std::filesystem::current_path(cwd);
  EXPECT_EQ(read_bytes(dir_.file("bare.bin")), "x");
  EXPECT_EQ(dir_.entries(), std::vector<std::string>{"bare.bin"});
}

TEST_F(AtomicFileTest, AbandonedWriterKeepsOldFileAndRemovesTemp) {
  std::string path = dir_.file("model.safetensors");
  write_bytes(path, "the good old checkpoint");
  {
    AtomicFileWriter writer(path);
    writer.write("half of a new");
    EXPECT_TRUE(std::filesystem::exists(writer.temp_path()));
    EXPECT_EQ(std::filesystem::path(writer.temp_path()).parent_path(), dir_.path());
    EXPECT_EQ(read_bytes(path), "the good old checkpoint");
    // Destroyed without commit(), as when an exception unwinds a writer.
  }
  EXPECT_EQ(read_bytes(path), "the good old checkpoint");
  EXPECT_EQ(dir_.entries(), std::vector<std::string>{"model.safetensors"});
}

TEST_F(AtomicFileTest, FailedRenameKeepsDestinationAndRemovesTemp) {
  // A non-empty directory cannot be replaced by a file, so the rename fails.
  std::string path = dir_.file("occupied");
  std::filesystem::create_directory(path);
  write_bytes(dir_.file("occupied/keep.txt"), "keep");
  AtomicFileWriter writer(path);
  writer.write("data");
  EXPECT_IO_ERROR(writer.commit(), path, "rename");
  EXPECT_EQ(read_bytes(dir_.file("occupied/keep.txt")), "keep");
  EXPECT_EQ(dir_.entries(), std::vector<std::string>{"occupied"});
  EXPECT_IO_ERROR(writer.write("more"), path, "failed");
}

TEST_F(AtomicFileTest, ErrorMissingDirectoryNamesPath) {
  std::string path = dir_.file("missing/out.bin");
  EXPECT_IO_ERROR(write_file_atomic(path, "x"), path, "No such file");
  EXPECT_TRUE(dir_.entries().empty());
}

TEST_F(AtomicFileTest, ErrorReadOnlyDirectoryKeepsOldFile) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  std::string path = dir_.file("ro/out.bin");
  std::filesystem::create_directory(dir_.file("ro"));
  write_bytes(path, "old");
  std::filesystem::permissions(
      dir_.file("ro"), std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
  EXPECT_IO_ERROR(write_file_atomic(path, "new"), path, "Permission denied");
  std::filesystem::permissions(dir_.file("ro"), std::filesystem::perms::owner_all);
  EXPECT_EQ(read_bytes(path), "old");
}

TEST_F(AtomicFileTest, ErrorWriteAfterCommit) {
  std::string path = dir_.file("out.bin");
  AtomicFileWriter writer(path);
  writer.commit();
  EXPECT_EQ(read_bytes(path), "");
  EXPECT_IO_ERROR(writer.write("late"), path, "committed");
  EXPECT_IO_ERROR(writer.commit(), path, "committed");
  EXPECT_EQ(dir_.entries(), std::vector<std::string>{"out.bin"});
}

TEST_F(AtomicFileTest, FailedNpyAndSafetensorsWritesKeepOldFile) {
  std::string npy = dir_.file("a.npy");
  std::string st = dir_.file("a.safetensors");
  write_bytes(npy, "old npy");
  write_bytes(st, "old safetensors");
  EXPECT_IO_ERROR(write_npy(npy, Tensor({2}, DType::bf16)), npy);
  EXPECT_IO_ERROR(write_safetensors(st, {{"w", Tensor({1})}, {"w", Tensor({2})}}), st, "twice");
  EXPECT_EQ(read_bytes(npy), "old npy");
  EXPECT_EQ(read_bytes(st), "old safetensors");
  EXPECT_EQ(dir_.entries(), (std::vector<std::string>{"a.npy", "a.safetensors"}));
}

TEST_F(AtomicFileTest, InputFileChecksReadsAgainstSize) {
  std::string path = dir_.file("in.bin");
  write_bytes(path, "0123456789");
  InputFile file(path);
  EXPECT_EQ(file.size(), 10u);
  char buf[4] = {};
  file.read_at(6, buf, 4, "the tail");
  EXPECT_EQ(std::string(buf, 4), "6789");
  EXPECT_IO_ERROR(file.read_at(7, buf, 4, "the tail"), path, "truncated", "the tail");
  EXPECT_IO_ERROR(file.read_at(~0ull, buf, 4, "the tail"), path, "truncated");
}

}  // namespace
}  // namespace resnet::io

// An exclusive lock on a directory holding a single-instance store (the SQLite file, the blob
// directory): flock on DIR/LOCK, which holds the owner's pid. Taken by the composition root
// before anything reads or changes the stores, held until the process exits, so a second
// `dlipkg serve` on the same directory stops before it can recover or sweep anything.
// Not thread-safe; one object per locked directory.
#pragma once

#include <filesystem>
#include <memory>

#include "domain/error.hpp"

namespace dlipkg::app {

class DataDirLock {
 public:
  // Creates `dir` if needed and locks it. Errors (kInternal; each message names the path):
  // another process holds it ("another dlipkg (pid N) is serving DIR"), or the directory or
  // the LOCK file cannot be created, opened or written.
  static Result<std::unique_ptr<DataDirLock>> Acquire(const std::filesystem::path& dir);
  ~DataDirLock();
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace dlipkg::app

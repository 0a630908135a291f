#include "data/fetch.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include "data/errors.h"
#include "io/checksum.h"

extern char** environ;

namespace agave::data {

namespace fs = std::filesystem;

namespace {

std::string last_line(const std::string& text) {
  size_t end = text.find_last_not_of("\r\n \t");
  if (end == std::string::npos) return "";
  size_t begin = text.find_last_of('\n', end);
  begin = begin == std::string::npos ? 0 : begin + 1;
  return text.substr(begin, end - begin + 1);
}

// The longest a whole download may take (curl --max-time).
constexpr int kDownloadSeconds = 7200;

}  // namespace

void download(const std::string& url, const std::string& dest, const std::string& md5,
              int64_t expected_bytes, const ProgressFn& progress) {
  std::error_code ec;
  if (!md5.empty() && fs::exists(dest, ec) &&
      io::file_digest(dest, io::Digest::Algorithm::kMd5) == md5) {
    return;
  }
  // bound: curl's --connect-timeout, --speed-time and --max-time below.
  const char* curl = "/usr/bin/curl";
  if (::access(curl, X_OK) != 0) {
    throw FetchError(curl, "not found; install curl to download " + url);
  }
  const std::string tmp = dest + ".tmp";
  fs::create_directories(fs::path(dest).parent_path(), ec);
  fs::remove(tmp, ec);

  int err_pipe[2];
  if (::pipe(err_pipe) != 0) throw FetchError(url, std::string("pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  posix_spawn_file_actions_addclose(&actions, err_pipe[0]);
  posix_spawn_file_actions_addclose(&actions, err_pipe[1]);
  // bound: curl's own limits: a connection in 30 s, a transfer that stalls (under 1 kB/s for
  // 2 min) ends it, and the whole download in 2 h (170 MB at 24 kB/s).
  std::vector<std::string> args = {"curl",
                                   "--fail",
                                   "--silent",
                                   "--show-error",
                                   "--location",
                                   "--connect-timeout",
                                   "30",
                                   "--speed-limit",
                                   "1000",
                                   "--speed-time",
                                   "120",
                                   "--max-time",
                                   std::to_string(kDownloadSeconds),
                                   "--retry",
                                   "2",
                                   "--output",
                                   tmp,
                                   url};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, curl, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(err_pipe[0]);
    throw FetchError(url, std::string("cannot start curl: ") + std::strerror(rc));
  }
  // curl's stderr is small (one line on failure); a reader thread keeps the pipe from filling
  // while this thread reports progress from the growing file.
  std::string errors;
  std::thread reader([&] {
    char buf[512];
    ssize_t n;
    while ((n = ::read(err_pipe[0], buf, sizeof buf)) > 0)
      errors.append(buf, static_cast<size_t>(n));
  });
  int status = 0;
  std::string reap_error;
  while (true) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);  // bound: curl's own --max-time
    if (r == pid) break;
    if (r < 0 && errno != EINTR) {
      // Reaped elsewhere (SIGCHLD ignored): its status is unknown, so the download is not trusted.
      reap_error =
          std::string("cannot learn how curl ended (waitpid: ") + std::strerror(errno) + ")";
      break;
    }
    if (progress) {
      const int64_t have = static_cast<int64_t>(fs::file_size(tmp, ec));
      if (!ec) progress({"download", have, expected_bytes});
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  reader.join();
  ::close(err_pipe[0]);
  if (!reap_error.empty()) {
    fs::remove(tmp, ec);
    throw FetchError(url, "download failed: " + reap_error);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fs::remove(tmp, ec);
    std::string why = last_line(errors);
    if (why.empty()) why = "curl exited with status " + std::to_string(WEXITSTATUS(status));
    throw FetchError(url, "download failed: " + why);
  }
  if (!md5.empty()) {
    const std::string got = io::file_digest(tmp, io::Digest::Algorithm::kMd5);
    if (got != md5) {
      fs::remove(tmp, ec);
      throw FetchError(url, "downloaded file has MD5 " + got + ", expected " + md5 +
                                " (corrupt or changed download); nothing was kept");
    }
  }
  fs::rename(tmp, dest, ec);
  if (ec) throw FetchError(dest, "cannot rename " + tmp + " into place: " + ec.message());
}

std::string fetch_cifar10(const std::string& dir, const ProgressFn& progress,
                          const std::string& url) {
  const std::string dest = (fs::path(dir) / "cifar-10-binary.tar.gz").string();
  download(url, dest, kCifar10Md5, kCifar10Bytes, progress);
  return dest;
}

}  // namespace agave::data

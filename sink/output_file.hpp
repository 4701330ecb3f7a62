// Opening the files the sink writes (--joblog, --stats, --results) so that another user who can
// write to the same directory (/tmp, a shared scratch directory) cannot redirect them with a
// planted symbolic link, nor hang the sink with a planted FIFO (docs/security.md):
//
// - the last component of a path is never followed if it is a symbolic link (O_NOFOLLOW);
//   components before it are the user's choice and are followed;
// - a file that does not exist is created with O_EXCL, so that a link planted between the look
//   and the creation is not followed either;
// - a file that exists must be a regular file; it is opened with O_NONBLOCK, so that opening a
//   FIFO returns at once and is then refused.
//
// Errors are std::system_error whose what() names `shown` (the path as the user knows it) and
// says what is wrong ("... is a symbolic link, which the sink does not follow"). Every function
// is reentrant.
#pragma once

#include <string>
#include <string_view>

namespace taskpipe {

struct OutputFile {
    int fd = -1;           // the caller closes it
    bool created = false;  // the file did not exist before
};

// Opens `name`, relative to the directory `dir_fd` (AT_FDCWD: the working directory), for
// writing with the extra open flags `flags` (O_APPEND, O_RDWR instead of O_WRONLY, ...),
// creating it with mode 0644 if it is missing. Never truncates.
OutputFile open_output_file(int dir_fd, const std::string& name, const std::string& shown,
                            int flags = 0);

// Creates `name` in the directory `dir_fd` afresh: what is there (a file, or a symbolic link,
// never what it points to) is removed, then the file is created with O_EXCL, mode 0644.
int create_fresh_file(int dir_fd, const std::string& name, const std::string& shown);

// Writes all of `bytes` to `fd`; throws std::system_error ("cannot write SHOWN").
void write_or_throw(int fd, std::string_view bytes, const std::string& shown);

}  // namespace taskpipe

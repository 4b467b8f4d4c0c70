// Package archive unpacks a bulk upload (.zip, .tar.gz, .tar) into its
// files, one at a time, without holding the archive or a file in memory,
// and refuses archives that would escape, deceive or exhaust the fleet.
//
// Decisions:
//
//   - Streaming: a tar (gzipped or not) is read straight from the upload.
//     A zip needs random access (its directory is at the end), so it is
//     spooled to a temporary file (os.TempDir, so TMPDIR), bounded by
//     MaxArchiveBytes and removed when Walk returns.
//   - Limits are enforced on the bytes as they unpack, never trusting
//     headers: each file's size, the files' total, the entry count
//     (directories included) and the ratio of unpacked to compressed bytes
//     (per zip entry against its compressed size, and for the whole archive
//     against the archive bytes read so far) once more than RatioFloor
//     (1 MiB) has unpacked. Headers are also checked up front, so an honest
//     bomb is refused before it unpacks at all. Bytes the WalkFunc leaves
//     unread are drained through the same checks. A zip's central
//     directory records are counted before archive/zip parses them (it
//     allocates one File per record); the tar stream's framing is bounded
//     too, so nothing archive/tar skips internally unpacks unbounded.
//   - Names: CleanName. Backslashes count as separators; absolute paths,
//     drive letters and any ".." segment are refused (CodeUnsafePath)
//     rather than rewritten, as are NUL, control characters, invalid
//     UTF-8 and overlong names. A clean name is a forward-slash relative
//     path. A second entry with the same clean name is refused
//     (CodeInvalid): each file becomes a job known by its name.
//   - Entry types: directories are skipped, and so are files operating
//     systems add by themselves (IsOSMetadata: __MACOSX/, ._* AppleDouble
//     files, .DS_Store, Thumbs.db, desktop.ini), after their names pass
//     the same checks. Symbolic links, hard links,
//     devices, FIFOs and sockets refuse the whole archive (CodeLink)
//     instead of being skipped, so the user learns that files they meant
//     to send were not sent. Encrypted zip entries and compression methods
//     other than store and deflate are CodeInvalid.
//   - Order: files are handed out in archive order (zip: central
//     directory order). A tar is refused where the problem is met, so the
//     WalkFunc may have seen earlier files; a zip's headers are all judged
//     before the first file is handed out.
//   - Errors: *Error with a stable Code; errors.Is(err, ErrBomb) and the
//     like match by code. Errors of the caller's own reader and of ctx come
//     back unchanged, those of the WalkFunc wrapped with the entry name.
package archive

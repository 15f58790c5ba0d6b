"""The file object a StoreWriter's HDF5 library writes through (h5py's fileobj driver).

It exists because HDF5 does not recover from a failed write (disk full, file size limit):
its caches are left half-flushed, closing the file fails, and h5py can crash the process
later. So the failure is kept from HDF5 here, and StoreWriter reports it as one
InputError line and deletes the file once HDF5 has let go of it.
"""

from __future__ import annotations

import os


class GuardedFile:
    """A file for h5py's fileobj driver that keeps a failed write from HDF5.

    The first OSError of a write is kept in `error`; HDF5 is told the write succeeded
    and nothing more goes to the disk. With `discard` set (the file is being thrown
    away), nothing more goes to the disk either. What HDF5 writes that does not reach
    the disk is kept in memory, because HDF5 may read it back (a heap it just wrote)
    and crashes on what it finds if that is missing. StoreWriter stops at the next
    batch once `error` is set, so that is little.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self._fd: int | None = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
        self._position = 0
        self._size = os.fstat(self._fd).st_size
        self.error: OSError | None = None
        self.discard = False
        self._kept: list[tuple[int, bytes]] = []  # (offset, data) of writes that did not reach the disk, in order

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._size}[whence]
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        if self.error is None and not self.discard:
            try:
                os.lseek(self._fd, self._position, os.SEEK_SET)
                done = 0
                while done < len(view):
                    done += os.write(self._fd, view[done:])
            except OSError as error:
                self.error = error
        if self.error is not None or self.discard:
            self._kept.append((self._position, bytes(view)))
        self._position += len(view)
        self._size = max(self._size, self._position)
        return len(view)

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        os.lseek(self._fd, self._position, os.SEEK_SET)
        data = os.read(self._fd, len(view))  # short past the end of what was written: HDF5 reads zeros there
        view[: len(data)] = data
        done = len(data)
        for offset, kept in self._kept:  # later writes over earlier ones
            start, stop = max(offset, self._position), min(offset + len(kept), self._position + len(view))
            if start < stop:
                view[done : start - self._position] = bytes(max(0, start - self._position - done))
                view[start - self._position : stop - self._position] = kept[start - offset : stop - offset]
                done = max(done, stop - self._position)
        self._position += done
        return done

    def read(self, size: int = -1) -> bytes:
        buffer = bytearray(max(0, self._size - self._position) if size < 0 else size)
        return bytes(buffer[: self.readinto(buffer)])

    def truncate(self, size: int | None = None) -> int:
        size = self._position if size is None else size
        if self.error is None and not self.discard:
            try:
                os.ftruncate(self._fd, size)
            except OSError as error:
                self.error = error
        self._kept = [(offset, kept[: size - offset]) for offset, kept in self._kept if offset < size]
        self._size = size
        return size

    def flush(self) -> None:
        pass  # every write went straight to the OS; atomic_output fsyncs the finished file

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

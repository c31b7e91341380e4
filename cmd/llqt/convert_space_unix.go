//go:build unix

package main

import "golang.org/x/sys/unix"

// freeSpace is the space available to us in dir's file system.
func freeSpace(dir string) (int64, bool) {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return 0, false
	}
	return int64(fs.Bavail) * int64(fs.Bsize), true
}

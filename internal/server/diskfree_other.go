//go:build !linux && !darwin

package server

// diskFree cannot tell free space here: uploads are bounded by size only.
func diskFree(string) (uint64, error) { return 0, errDiskFreeUnknown }

// Package structs is gantry's domain model for the centralized structure:
// nodes, jobs, allocations, plans and the messages that change them.
//
// These types are the JSON wire format of the HTTP API too (package api
// re-exports them), so field names and tags are part of the public contract.
// Everything here is plain data plus pure helpers; no I/O, no clocks.
package structs

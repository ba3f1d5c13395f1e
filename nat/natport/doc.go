// Package natport is the pure half of inbound NAT: which frontend port each
// instance of an inboundNatPool gets (AssignPoolPorts: start + instanceId
// when that is inside the range and free, else the lowest free port; stable
// for the instance's life; an exhausted range fails with Azure's code
// InboundNatPoolFrontendPortRangeSmallerThanRequestedPorts), and Validate,
// which rejects pools and rules whose frontend ports overlap on the same
// frontend IP and protocol. It imports nothing of the emulator, so the
// model uses it without the data path (package nat forwards the ports).
package natport

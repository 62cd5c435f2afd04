package testenv

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"
)

// DNS constants used by the minimal client below (RFC 1035).
const (
	dnsTypeA     = 1
	dnsClassIN   = 1
	dnsHeaderLen = 12

	RcodeSuccess  = 0
	RcodeServFail = 2
	RcodeNXDomain = 3
	RcodeRefused  = 5
)

// DNSTimeout bounds one LookupA exchange.
const DNSTimeout = 3 * time.Second

// RcodeError is a DNS answer with a non-zero response code.
type RcodeError struct {
	Name  string
	Rcode int
}

func (e *RcodeError) Error() string {
	names := map[int]string{1: "FORMERR", RcodeServFail: "SERVFAIL", RcodeNXDomain: "NXDOMAIN", 4: "NOTIMP", RcodeRefused: "REFUSED"}
	n, ok := names[e.Rcode]
	if !ok {
		n = fmt.Sprintf("rcode %d", e.Rcode)
	}
	return fmt.Sprintf("dns: %s: %s", e.Name, n)
}

// LookupA asks the DNS server at addr ("host" or "host:port", port 53 by default) for the A records of name,
// over TCP or UDP, with recursion desired. A non-zero response code is an *RcodeError; an empty answer
// section gives no addresses and no error. CNAMEs in the answer are followed only as far as the server
// included their A records.
func LookupA(addr, name string, tcp bool) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DNSTimeout)
	defer cancel()
	return LookupAContext(ctx, addr, name, tcp)
}

// LookupAContext is LookupA bounded by ctx (and DNSTimeout).
func LookupAContext(ctx context.Context, addr, name string, tcp bool) ([]netip.Addr, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "53")
	}
	ctx, cancel := context.WithTimeout(ctx, DNSTimeout)
	defer cancel()
	var idb [2]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, err
	}
	id := binary.BigEndian.Uint16(idb[:])
	query, err := buildQuery(id, name, dnsTypeA)
	if err != nil {
		return nil, err
	}
	resp, err := exchange(ctx, addr, tcp, query)
	if err != nil {
		return nil, err
	}
	return parseAResponse(id, name, resp)
}

// exchange sends one DNS message (its first two bytes are the id) over UDP or TCP and returns the answer
// with the same id, bounded by ctx. Over UDP a stray datagram (a late answer to an earlier query) is skipped;
// over TCP, where answers come in order, an answer with another id is an error.
func exchange(ctx context.Context, addr string, tcp bool, msg []byte) ([]byte, error) {
	network := "udp"
	if tcp {
		network = "tcp"
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	id := binary.BigEndian.Uint16(msg)
	if !tcp {
		if _, err := conn.Write(msg); err != nil {
			return nil, fmt.Errorf("dns: %w", err)
		}
		buf := make([]byte, 65535)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return nil, fmt.Errorf("dns: read from %s: %w", addr, err)
			}
			if n >= 2 && binary.BigEndian.Uint16(buf) == id {
				return buf[:n], nil
			}
		}
	}
	framed := binary.BigEndian.AppendUint16(nil, uint16(len(msg)))
	if _, err := conn.Write(append(framed, msg...)); err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	var l [2]byte
	if _, err := io.ReadFull(conn, l[:]); err != nil {
		return nil, fmt.Errorf("dns: read from %s: %w", addr, err)
	}
	resp := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(conn, resp); err != nil {
		return nil, fmt.Errorf("dns: read from %s: %w", addr, err)
	}
	if len(resp) < 2 || binary.BigEndian.Uint16(resp) != id {
		return nil, fmt.Errorf("dns: answer from %s over tcp with another id", addr)
	}
	return resp, nil
}

func buildQuery(id uint16, name string, qtype uint16) ([]byte, error) {
	msg := make([]byte, dnsHeaderLen, 64)
	binary.BigEndian.PutUint16(msg[0:], id)
	binary.BigEndian.PutUint16(msg[2:], 0x0100) // standard query, RD
	binary.BigEndian.PutUint16(msg[4:], 1)      // QDCOUNT
	name = strings.TrimSuffix(name, ".")
	if name != "" {
		for _, label := range strings.Split(name, ".") {
			if len(label) == 0 || len(label) > 63 {
				return nil, fmt.Errorf("dns: invalid name %q", name)
			}
			msg = append(msg, byte(len(label)))
			msg = append(msg, label...)
		}
	}
	msg = append(msg, 0)
	msg = binary.BigEndian.AppendUint16(msg, qtype)
	msg = binary.BigEndian.AppendUint16(msg, dnsClassIN)
	if len(msg) > 512 {
		return nil, fmt.Errorf("dns: name too long: %q", name)
	}
	return msg, nil
}

var errShort = errors.New("dns: short or malformed message")

func parseAResponse(id uint16, name string, msg []byte) ([]netip.Addr, error) {
	if len(msg) < dnsHeaderLen {
		return nil, errShort
	}
	if got := binary.BigEndian.Uint16(msg[0:]); got != id {
		return nil, fmt.Errorf("dns: answer id %d, want %d", got, id)
	}
	flags := binary.BigEndian.Uint16(msg[2:])
	if flags&0x8000 == 0 {
		return nil, errors.New("dns: message is not a response")
	}
	if flags&0x0200 != 0 {
		return nil, errors.New("dns: truncated answer; query over TCP")
	}
	if rcode := int(flags & 0x000f); rcode != RcodeSuccess {
		return nil, &RcodeError{Name: name, Rcode: rcode}
	}
	qd, an := binary.BigEndian.Uint16(msg[4:]), binary.BigEndian.Uint16(msg[6:])
	off := dnsHeaderLen
	var err error
	for range qd {
		if off, err = skipName(msg, off); err != nil {
			return nil, err
		}
		off += 4
	}
	var addrs []netip.Addr
	for range an {
		if off, err = skipName(msg, off); err != nil {
			return nil, err
		}
		if off+10 > len(msg) {
			return nil, errShort
		}
		typ, class := binary.BigEndian.Uint16(msg[off:]), binary.BigEndian.Uint16(msg[off+2:])
		rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
		off += 10
		if off+rdlen > len(msg) {
			return nil, errShort
		}
		if typ == dnsTypeA && class == dnsClassIN && rdlen == 4 {
			addrs = append(addrs, netip.AddrFrom4([4]byte(msg[off:off+4])))
		}
		off += rdlen
	}
	return addrs, nil
}

// skipName returns the offset after the (possibly compressed) name at off.
func skipName(msg []byte, off int) (int, error) {
	for {
		if off >= len(msg) {
			return 0, errShort
		}
		l := int(msg[off])
		switch {
		case l == 0:
			return off + 1, nil
		case l&0xc0 == 0xc0: // pointer: the name ends here
			if off+2 > len(msg) {
				return 0, errShort
			}
			return off + 2, nil
		case l&0xc0 != 0:
			return 0, errShort
		default:
			off += 1 + l
		}
	}
}

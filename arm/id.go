package arm

import (
	"fmt"
	"strings"
)

// ID is a parsed ARM resource id:
//
//	/subscriptions/{sub}/resourceGroups/{rg}/providers/{namespace}/{type}/{name}[/{childType}/{childName}...]
//
// Types holds the type segments (["virtualNetworks", "subnets"]) and Names the
// matching names; both have the same length. An id of a resource group has no
// Namespace, Types or Names.
type ID struct {
	Subscription  string
	ResourceGroup string
	Namespace     string
	Types         []string
	Names         []string
}

// ParseID parses an ARM resource id. Segment keywords ("subscriptions",
// "resourceGroups", "providers") match case-insensitively, as ARM does.
func ParseID(s string) (ID, error) {
	var id ID
	orig := s
	s = strings.TrimSuffix(s, "/")
	if !strings.HasPrefix(s, "/") {
		return id, fmt.Errorf("resource id %q: must start with /subscriptions/", orig)
	}
	parts := strings.Split(strings.TrimPrefix(s, "/"), "/")
	for _, p := range parts {
		if p == "" {
			return id, fmt.Errorf("resource id %q: empty segment", orig)
		}
	}
	if len(parts) < 2 || !strings.EqualFold(parts[0], "subscriptions") {
		return id, fmt.Errorf("resource id %q: must start with /subscriptions/{subscriptionId}", orig)
	}
	id.Subscription = parts[1]
	parts = parts[2:]
	if len(parts) == 0 {
		return id, nil
	}
	if len(parts) < 2 || !strings.EqualFold(parts[0], "resourceGroups") {
		return id, fmt.Errorf("resource id %q: expected resourceGroups/{name} after the subscription", orig)
	}
	id.ResourceGroup = parts[1]
	parts = parts[2:]
	if len(parts) == 0 {
		return id, nil
	}
	if len(parts) < 4 || !strings.EqualFold(parts[0], "providers") {
		return id, fmt.Errorf("resource id %q: expected providers/{namespace}/{type}/{name} after the resource group", orig)
	}
	id.Namespace = parts[1]
	rest := parts[2:]
	if len(rest)%2 != 0 {
		return id, fmt.Errorf("resource id %q: type %q has no name", orig, rest[len(rest)-1])
	}
	for i := 0; i < len(rest); i += 2 {
		id.Types = append(id.Types, rest[i])
		id.Names = append(id.Names, rest[i+1])
	}
	return id, nil
}

// NewID builds the id of a resource of fullType ("Microsoft.Network/virtualNetworks/subnets")
// with one name per type segment. A trailing slash in fullType is allowed.
func NewID(sub, rg, fullType string, names ...string) (ID, error) {
	fullType = strings.TrimSuffix(fullType, "/")
	segs := strings.Split(fullType, "/")
	if len(segs) < 2 {
		return ID{}, fmt.Errorf("resource type %q: expected Namespace/type", fullType)
	}
	if len(names) != len(segs)-1 {
		return ID{}, fmt.Errorf("resource type %q needs %d name(s), got %d", fullType, len(segs)-1, len(names))
	}
	return ID{Subscription: sub, ResourceGroup: rg, Namespace: segs[0], Types: segs[1:], Names: names}, nil
}

// MustID is NewID for types and names known to be valid; it panics otherwise.
func MustID(sub, rg, fullType string, names ...string) ID {
	id, err := NewID(sub, rg, fullType, names...)
	if err != nil {
		panic(err)
	}
	return id
}

// String renders the id in ARM's canonical casing for the keywords.
func (id ID) String() string {
	var b strings.Builder
	b.WriteString("/subscriptions/")
	b.WriteString(id.Subscription)
	if id.ResourceGroup == "" {
		return b.String()
	}
	b.WriteString("/resourceGroups/")
	b.WriteString(id.ResourceGroup)
	if id.Namespace == "" {
		return b.String()
	}
	b.WriteString("/providers/")
	b.WriteString(id.Namespace)
	for i := range id.Types {
		b.WriteString("/")
		b.WriteString(id.Types[i])
		b.WriteString("/")
		b.WriteString(id.Names[i])
	}
	return b.String()
}

// Type is the full resource type, e.g. "Microsoft.Network/virtualNetworks/subnets".
func (id ID) Type() string {
	if id.Namespace == "" {
		return ""
	}
	return id.Namespace + "/" + strings.Join(id.Types, "/")
}

// Name is the last name segment ("" for a resource group id).
func (id ID) Name() string {
	if len(id.Names) == 0 {
		return ""
	}
	return id.Names[len(id.Names)-1]
}

// Parent returns the id one level up (a subnet's virtual network). The parent of
// a top-level resource is its resource group.
func (id ID) Parent() ID {
	p := id
	if len(id.Types) <= 1 {
		p.Namespace, p.Types, p.Names = "", nil, nil
		return p
	}
	p.Types = append([]string(nil), id.Types[:len(id.Types)-1]...)
	p.Names = append([]string(nil), id.Names[:len(id.Names)-1]...)
	return p
}

// Child returns the id of a child resource of this one.
func (id ID) Child(typ, name string) ID {
	c := id
	c.Types = append(append([]string(nil), id.Types...), typ)
	c.Names = append(append([]string(nil), id.Names...), name)
	return c
}

// Key is the id lower-cased: ARM ids compare case-insensitively, so maps are keyed by Key.
func (id ID) Key() string { return strings.ToLower(id.String()) }

// IsType reports whether the id is of fullType, case-insensitively.
func (id ID) IsType(fullType string) bool {
	return strings.EqualFold(id.Type(), strings.TrimSuffix(fullType, "/"))
}

// EqualIDs compares two id strings as ARM does: case-insensitively, ignoring a trailing slash.
func EqualIDs(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "/"), strings.TrimSuffix(b, "/"))
}

// KeyOf lower-cases an id string for use as a map key. Unparsable ids are lower-cased as they are.
func KeyOf(s string) string {
	if id, err := ParseID(s); err == nil {
		return id.Key()
	}
	return strings.ToLower(strings.TrimSuffix(s, "/"))
}

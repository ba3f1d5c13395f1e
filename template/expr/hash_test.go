package expr

import "testing"

func TestUniqueString(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		// Outputs of real Azure deployments, recorded in the comments of
		// KingslandConsulting/Kingsland.ArmLinter
		// (src/Kingsland.ArmLinter/Functions/ArmFunctions_UniqueString.cs).
		{[]string{"aaa"}, "zavj67f3en4hc"},
		{[]string{"bbb"}, "w5eragfxe33cy"},
		{[]string{"zzz"}, "cryksdzzzawae"},
		{[]string{"xxx", "yyy", "zzz"}, "lghi7k5js7itq"},
		// Vectors of a public uniquestring.sh reimplementation, stated there
		// as checked against Bicep's uniqueString().
		{[]string{"test"}, "rbgf3xv4ufgzg"},
		{[]string{"hello", "world"}, "a7wkljktk6wne"},
		{[]string{"abc"}, "cgtzqvhu4i23s"},
		{[]string{"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/my-rg"}, "bmg7c6xu4tw46"},
		{[]string{"foo", "bar", "baz"}, "xzi4ioaxtmth4"},
	}
	for _, tt := range tests {
		if got := UniqueString(tt.args...); got != tt.want {
			t.Errorf("UniqueString(%q) = %s, want %s", tt.args, got, tt.want)
		}
	}
}

func TestGUID(t *testing.T) {
	// ARM's guid() is a version-5 UUID in the namespace
	// 11fb06fb-712d-4ddd-98c7-e71bbd588830 over the '-'-joined arguments.
	// Expected values computed independently with Python's
	// uuid.uuid5(UUID('11fb06fb-712d-4ddd-98c7-e71bbd588830'), name).
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"a", "b", "c"}, "a98fa280-e03f-5afa-8d8e-92d0a9c201e8"},
		{[]string{"x"}, "51c0fe04-91fa-5688-abb4-481ca7437854"},
		{[]string{"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg1", "role"}, "8cd9a82a-a338-54d4-81d4-954474b4de73"},
	}
	for _, tt := range tests {
		if got := GUID(tt.args...); got != tt.want {
			t.Errorf("GUID(%q) = %s, want %s", tt.args, got, tt.want)
		}
	}
}

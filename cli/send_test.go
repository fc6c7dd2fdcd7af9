package cli

import (
	"strings"
	"testing"

	"github.com/dwsnotify/dws_notify/notification"
)

func TestReplaceTopLevelString(t *testing.T) {
	sample, _ := notification.Sample("addPaymentMethod")
	cases := []struct {
		name, body, value, want, err string
	}{
		{name: "seed sample", body: string(sample), value: "my-2",
			want: strings.Replace(string(sample), `"20990501203220303032821078591"`, `"my-2"`, 1)},
		{name: "nested member of the same name is left alone", body: `{"a":{"requestId":"inner"},"requestId":"outer","z":[1,{"requestId":"x"}]}`, value: "new",
			want: `{"a":{"requestId":"inner"},"requestId":"new","z":[1,{"requestId":"x"}]}`},
		{name: "spacing kept", body: "{ \"requestId\" :\n\t\"old\" , \"b\" : \"c\" }", value: "n",
			want: "{ \"requestId\" :\n\t\"n\" , \"b\" : \"c\" }"},
		{name: "escaped member name", body: `{"request\u0049d":"old"}`, value: "n", want: `{"request\u0049d":"n"}`},
		{name: "non-string value", body: `{"requestId":123,"x":"y"}`, value: "n", want: `{"requestId":"n","x":"y"}`},
		{name: "value needing escapes", body: `{"requestId":"old"}`, value: `a"b<&>\`, want: `{"requestId":"a\"b<&>\\"}`},
		{name: "missing", body: `{"request_id":"old"}`, value: "n", err: "no top-level requestId"},
		{name: "only nested", body: `{"a":{"requestId":"old"}}`, value: "n", err: "no top-level requestId"},
		{name: "twice", body: `{"requestId":"a","requestId":"b"}`, value: "n", err: "twice"},
		{name: "array", body: `["requestId"]`, value: "n", err: "not a JSON object"},
		{name: "not json", body: `requestId=1`, value: "n", err: "not JSON"},
		{name: "truncated", body: `{"requestId":"a",`, value: "n", err: "not valid JSON"},
		{name: "trailing data", body: `{"requestId":"a"} {}`, value: "n", err: "data after"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := replaceTopLevelString([]byte(c.body), "requestId", c.value)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
	// The spliced sample is still a valid notification with the new id.
	got, err := replaceTopLevelString(sample, "requestId", "my-3")
	if err != nil {
		t.Fatal(err)
	}
	api, _ := notification.Lookup("addPaymentMethod")
	res, err := api.Validate(got, notification.Options{})
	if err != nil || res.Key != "my-3" {
		t.Fatalf("spliced sample: requestId %q, %v", res.Key, err)
	}
}

// --request-id on an Antom sample replaces the first field of its key, a
// top-level member, so the spliced sample is a valid notification with a
// new key whose first part is the value given; on a DWS sample (or a
// --body file) it replaces requestId.
func TestIDMemberOfEverySample(t *testing.T) {
	for _, name := range notification.Names() {
		api, _ := notification.Lookup(name)
		o := &sendOptions{sample: name, requestID: "new:id%1"}
		member := o.idMember()
		want := "requestId"
		if api.Family() == notification.Antom {
			want = api.KeyFields()[0]
		}
		if member != want {
			t.Errorf("%s: --request-id replaces %s, want %s", name, member, want)
		}
		body, err := o.loadBody()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		res, err := api.Validate(body, notification.Options{})
		if err != nil {
			t.Fatalf("%s: the spliced sample does not validate: %v", name, err)
		}
		sample, _ := notification.Sample(name)
		old, _ := api.Validate(sample, notification.Options{})
		if res.Key == old.Key {
			t.Errorf("%s: the spliced sample has the sample's key %q", name, res.Key)
		}
		wantPrefix := "new%3Aid%251"
		if api.Family() == notification.DWS {
			wantPrefix = "new:id%1"
		}
		if !strings.HasPrefix(res.Key, wantPrefix) {
			t.Errorf("%s: key %q does not start with %q", name, res.Key, wantPrefix)
		}
	}
	if m := (&sendOptions{body: "file.json"}).idMember(); m != "requestId" {
		t.Errorf("--body: --request-id replaces %s", m)
	}
}

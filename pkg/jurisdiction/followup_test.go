package jurisdiction

import (
	"encoding/json"
	"testing"
)

func TestFollowUpUnion(t *testing.T) {
	own := Decision{Priority: "normal", Recipients: []Recipient{
		{Authority: "at-bk", Country: "AT", Grounds: []Ground{{Basis: BasisOffence, Evidence: Declared}}},
		{Authority: "fr-pn", Country: "FR", Grounds: []Ground{{Basis: BasisVictim, Evidence: Declared}}},
	}}
	first := Decision{Recipients: []Recipient{
		{Authority: "de-bka", Country: "DE", Grounds: []Ground{{Basis: BasisSuspect, Evidence: Declared}}},
		{Authority: "fr-pn", Country: "FR", Grounds: []Ground{{Basis: BasisOffence, Evidence: Declared}}},
		{Authority: "europol", Country: "EU", Grounds: []Ground{{Basis: BasisEuropol, Evidence: NoAuthority}}},
	}}
	second := Decision{Recipients: []Recipient{
		{Authority: "de-bka", Country: "DE", Grounds: []Ground{{Basis: BasisOffence, Evidence: Declared}}},
		{Authority: "be-fp", Country: "BE", Grounds: []Ground{{Basis: BasisOffence, Evidence: Declared}}},
	}}
	ownJSON, _ := json.Marshal(own)
	got := FollowUp(own, Earlier{Link: LinkFollowUpOf, Decision: first}, Earlier{Link: LinkSupersedes, Decision: second})
	fu := Ground{Basis: BasisFollowUp, Evidence: LinkFollowUpOf}
	sup := Ground{Basis: BasisFollowUp, Evidence: LinkSupersedes}
	want := []Recipient{
		{Authority: "at-bk", Country: "AT", Grounds: []Ground{{Basis: BasisOffence, Evidence: Declared}}},
		{Authority: "be-fp", Country: "BE", Grounds: []Ground{sup}},
		{Authority: "de-bka", Country: "DE", Grounds: []Ground{fu, sup}},
		{Authority: "fr-pn", Country: "FR", Grounds: []Ground{{Basis: BasisVictim, Evidence: Declared}, fu}},
		{Authority: "europol", Country: "EU", Grounds: []Ground{fu}},
	}
	gj, _ := json.Marshal(got.Recipients)
	wj, _ := json.Marshal(want)
	if string(gj) != string(wj) {
		t.Errorf("union\n got %s\nwant %s", gj, wj)
	}
	if got.Priority != own.Priority {
		t.Errorf("priority %q, want the notice's own %q", got.Priority, own.Priority)
	}
	if after, _ := json.Marshal(own); string(after) != string(ownJSON) {
		t.Errorf("FollowUp changed its argument: %s", after)
	}
	// A chain: a follow-up of the follow-up reaches everyone through the
	// stored (union) decision, and the same input gives the same bytes.
	third := FollowUp(Decision{Recipients: []Recipient{}}, Earlier{Link: LinkFollowUpOf, Decision: got})
	if len(third.Recipients) != 5 {
		t.Errorf("chain: %d recipients, want 5: %+v", len(third.Recipients), third.Recipients)
	}
	again, _ := json.Marshal(FollowUp(own, Earlier{Link: LinkFollowUpOf, Decision: first}, Earlier{Link: LinkSupersedes, Decision: second}))
	if once, _ := json.Marshal(got); string(once) != string(again) {
		t.Error("FollowUp is not deterministic")
	}
	// Without earlier notices, the decision is own's.
	if same, _ := json.Marshal(FollowUp(own)); string(same) != string(ownJSON) {
		t.Errorf("no earlier: %s", same)
	}
}

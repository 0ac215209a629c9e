// Package country knows ISO 3166-1 alpha-2 codes, the Member States of the
// EU and the EEA, and which territories belong to which Member State.
package country

import "strings"

// Europol is the pseudo-country of the EU agency Europol in configuration
// and routing decisions.
const Europol = "EU"

// iso is every officially assigned ISO 3166-1 alpha-2 code.
const iso = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ " +
	"CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR " +
	"GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP " +
	"KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT " +
	"MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW " +
	"SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG " +
	"UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW"

// reserved are codes outside the official list that platforms meet in
// practice: EL (Greece, as EU institutions write it), UK, the Canary Islands
// (IC), Ceuta and Melilla (EA), Clipperton (CP) and Kosovo (XK).
const reserved = "EL UK IC EA CP XK"

// EU27 lists the Member States of the European Union.
var EU27 = strings.Fields("AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE")

// EEAOnly lists the EEA states outside the EU.
var EEAOnly = strings.Fields("IS LI NO")

var known = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range strings.Fields(iso + " " + reserved) {
		m[c] = true
	}
	return m
}()

// aliases map codes that name a Member State under another spelling.
var aliases = map[string]string{"EL": "GR"}

// territories map the codes of territories that are part of a Member State
// (outermost regions, overseas collectivities and countries, autonomous
// regions) to that Member State.
var territories = map[string]string{
	// France: outermost regions and overseas collectivities.
	"GF": "FR", "GP": "FR", "MQ": "FR", "RE": "FR", "YT": "FR", "MF": "FR", "BL": "FR",
	"PM": "FR", "NC": "FR", "PF": "FR", "WF": "FR", "TF": "FR", "CP": "FR",
	// Spain: Canary Islands, Ceuta and Melilla.
	"IC": "ES", "EA": "ES",
	// Finland: Åland.
	"AX": "FI",
	// Denmark: Greenland and the Faroe Islands.
	"GL": "DK", "FO": "DK",
	// The Netherlands: Caribbean Netherlands and the other countries of the Kingdom.
	"BQ": "NL", "AW": "NL", "CW": "NL", "SX": "NL",
	// Norway (EEA): Svalbard and Jan Mayen, Bouvet Island.
	"SJ": "NO", "BV": "NO",
}

// Normalize upper-cases code and reports whether it is a known ISO 3166-1
// alpha-2 code (or one of the reserved codes platforms use).
func Normalize(code string) (string, bool) {
	if len(code) != 2 {
		return "", false
	}
	c := strings.ToUpper(code)
	return c, known[c]
}

// State returns the state a known code stands for: the Member State a
// territory belongs to, GR for EL, or the code itself. territory is true
// when the code was mapped.
func State(code string) (state string, territory bool) {
	if s, ok := aliases[code]; ok {
		return s, false
	}
	if s, ok := territories[code]; ok {
		return s, true
	}
	return code, false
}

// Set is a set of Member States.
type Set map[string]bool

// MemberStates returns the Member States of scope, "EU27" or "EEA"; ok is
// false for any other scope.
func MemberStates(scope string) (s Set, ok bool) {
	var codes []string
	switch scope {
	case "EU27":
		codes = EU27
	case "EEA":
		codes = append(append([]string{}, EU27...), EEAOnly...)
	default:
		return nil, false
	}
	s = Set{}
	for _, c := range codes {
		s[c] = true
	}
	return s, true
}

// Codes lists every known code: the official ISO 3166-1 alpha-2 codes,
// then the reserved ones platforms use.
func Codes() []string { return strings.Fields(iso + " " + reserved) }

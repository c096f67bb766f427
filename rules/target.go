package rules

import "strings"

// Channels a target may be reached by.
const (
	ChannelSMS     = "sms"
	ChannelEmail   = "email"
	ChannelPager   = "pager"
	ChannelWebhook = "webhook"
)

var allChannels = []string{ChannelSMS, ChannelEmail, ChannelPager, ChannelWebhook}

// Target is one contact to notify, with the channels to use. It holds
// addresses: log ContactID (or String), never the whole struct.
type Target struct {
	AgencyID   string   `json:"agency_id"`
	AgencyName string   `json:"agency_name"`
	AgencyKind string   `json:"agency_kind"`
	Locale     string   `json:"locale"`
	ContactID  string   `json:"contact_id"`
	Role       string   `json:"role"`
	Channels   []string `json:"channels"`
	Fallback   []string `json:"fallback,omitempty"`

	SMS              string `json:"sms,omitempty"`
	Email            string `json:"email,omitempty"`
	PagerKeyEnv      string `json:"pager_key_env,omitempty"`
	WebhookURL       string `json:"webhook_url,omitempty"`
	WebhookSecretEnv string `json:"webhook_secret_env,omitempty"`

	// Selector is the policy's agency selector that produced the target.
	Selector string `json:"selector"`
	// Unrouted marks a fallback-agency target standing in for a selector
	// that could not be resolved; Reason says why.
	Unrouted bool   `json:"unrouted,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// String is safe to log: ids and channels, no addresses.
func (t Target) String() string {
	s := t.AgencyID + "/" + t.ContactID + " via " + strings.Join(t.Channels, ",")
	if t.Unrouted {
		s += " (unrouted)"
	}
	return s
}

// When none of via is possible but a fallback channel is, the fallback
// channels become the plan: a contact is never silently left out.
func (c *Config) makeTarget(a *Agency, ct *Contact, spec TargetSpec) (Target, bool) {
	via := reachable(ct, spec.Via)
	fb := reachable(ct, spec.Fallback)
	if len(via) == 0 {
		via, fb = fb, nil
	}
	if len(via) == 0 {
		return Target{}, false
	}
	return Target{
		AgencyID: a.ID, AgencyName: a.Name, AgencyKind: a.Kind, Locale: a.Locale,
		ContactID: ct.ID, Role: ct.Role, Channels: via, Fallback: fb,
		SMS: ct.SMS, Email: ct.Email, PagerKeyEnv: ct.PagerKeyEnv,
		WebhookURL: ct.WebhookURL, WebhookSecretEnv: ct.WebhookSecretEnv,
		Selector: spec.Agency,
	}, true
}

func hasAddress(ct *Contact, ch string) bool {
	switch ch {
	case ChannelSMS:
		return ct.SMS != ""
	case ChannelEmail:
		return ct.Email != ""
	case ChannelPager:
		return ct.PagerKeyEnv != ""
	case ChannelWebhook:
		return ct.WebhookURL != ""
	}
	return false
}

func reachable(ct *Contact, chans []string) []string {
	var out []string
	for _, ch := range chans {
		if hasAddress(ct, ch) {
			out = append(out, ch)
		}
	}
	return out
}

func contactChannels(ct *Contact) []string { return reachable(ct, allChannels) }

// mergeTargets adds ts to out, one target per contact: a contact reached
// by two selectors gets one notification over the union of channels.
func mergeTargets(out, ts []Target) []Target {
next:
	for _, t := range ts {
		for i := range out {
			o := &out[i]
			if o.ContactID != t.ContactID {
				continue
			}
			o.Channels = union(o.Channels, t.Channels)
			o.Fallback = union(o.Fallback, t.Fallback)
			if t.Unrouted && !o.Unrouted {
				o.Unrouted, o.Reason = true, t.Reason
			}
			continue next
		}
		out = append(out, t)
	}
	return out
}

func union(a, b []string) []string {
	for _, s := range b {
		if !contains(a, s) {
			a = append(a, s)
		}
	}
	return a
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func roleText(role string) string {
	if role == "" {
		return ""
	}
	return " with role " + role
}

func channelList(spec TargetSpec) string {
	return strings.Join(append(append([]string(nil), spec.Via...), spec.Fallback...), ", ")
}

package scheduling

import (
	"context"
	"errors"
	"fmt"

	"github.com/dispatcherhq/dispatcher/internal/comms"
	"github.com/dispatcherhq/dispatcher/internal/contract"
)

// Settings returns the caller's company settings with defaults filled in.
func (s *Service) Settings(ctx context.Context, p comms.Principal) (comms.Settings, error) {
	co, err := s.store.GetCompany(ctx, p.CompanyID)
	if err != nil {
		return comms.Settings{}, fmt.Errorf("store.GetCompany: %w", err)
	}
	return co.Settings.WithDefaults(), nil
}

// PutSettings validates and replaces the caller's settings document. Each
// of its sending_domains must be one the deployment may send from (the
// IdentityVerifier: on AWS a verified SES identity), checked after the
// document itself is valid; a verifier that cannot answer is
// comms.ErrUnavailable, and nothing is saved. The store claims the domains
// for the company in the settings' write: a domain another company
// declares (itself, a parent or a subdomain) is a
// *comms.SendingDomainTakenError naming sending_domains[i], nothing saved.
func (s *Service) PutSettings(ctx context.Context, p comms.Principal, body []byte) (comms.Settings, error) {
	set, err := contract.ParseSettings(body)
	if err != nil {
		return comms.Settings{}, err
	}
	if err := s.verifyDomains(ctx, set.SendingDomains); err != nil {
		return comms.Settings{}, err
	}
	set = set.WithDefaults()
	if err := s.store.PutSettings(ctx, p.CompanyID, set); err != nil {
		return comms.Settings{}, fmt.Errorf("store.PutSettings: %w", err)
	}
	return set, nil
}

// verifyDomains asks the IdentityVerifier about every declared domain,
// one at a time (SES's GetEmailIdentity has a low rate quota; the verifier
// caches what it learns), and reports every unverified one at once.
func (s *Service) verifyDomains(ctx context.Context, domains []string) error {
	if len(domains) == 0 {
		return nil
	}
	if s.identities == nil {
		return errors.New("scheduling.PutSettings: no IdentityVerifier is configured, so sending_domains cannot be checked")
	}
	var problems comms.ValidationError
	for i, d := range domains {
		if r := s.reservedOverlap(d); r != "" {
			problems.Add(fmt.Sprintf("sending_domains[%d]", i),
				"domain %s is (or covers) %s, the deployment's own sender domain, which no company may declare; declare a domain of your own (rows that name no from_email are sent from the deployment's default address)", d, r)
			continue
		}
		ok, err := s.identities.VerifiedForSending(ctx, d)
		if err != nil {
			return fmt.Errorf("verifying sending domain %s: %w: %w", d, comms.ErrUnavailable, err)
		}
		if !ok {
			problems.Add(fmt.Sprintf("sending_domains[%d]", i),
				"domain %s is not a verified SES identity in this account; verify it (docs/deploy.md)", d)
		}
	}
	return problems.Err()
}

// reservedOverlap returns the reserved domain that d is, is a subdomain
// of, or is a parent of ("" when none).
func (s *Service) reservedOverlap(d string) string {
	for _, r := range s.reserved {
		if comms.CoveringDomain(d, []string{r}) != "" || comms.CoveringDomain(r, []string{d}) != "" {
			return r
		}
	}
	return ""
}

// PutPhoneNumber creates or replaces a sender phone number.
func (s *Service) PutPhoneNumber(ctx context.Context, p comms.Principal, id string, body []byte) (comms.PhoneNumber, error) {
	id, err := contract.ResourceID(id)
	if err != nil {
		return comms.PhoneNumber{}, err
	}
	pn, err := contract.ParsePhoneNumber(body)
	if err != nil {
		return comms.PhoneNumber{}, err
	}
	now := s.clock()
	pn.ID, pn.CompanyID, pn.CreatedAt, pn.UpdatedAt = id, p.CompanyID, now, now
	if err := s.store.PutPhoneNumber(ctx, pn); err != nil {
		return comms.PhoneNumber{}, fmt.Errorf("store.PutPhoneNumber: %w", err)
	}
	return s.store.GetPhoneNumber(ctx, p.CompanyID, id)
}

// PhoneNumber returns one sender phone number.
func (s *Service) PhoneNumber(ctx context.Context, p comms.Principal, id string) (comms.PhoneNumber, error) {
	u, ok := comms.UUIDString(id)
	if !ok {
		return comms.PhoneNumber{}, fmt.Errorf("scheduling.PhoneNumber: malformed id: %w", comms.ErrNotFound)
	}
	return s.store.GetPhoneNumber(ctx, p.CompanyID, u)
}

// PhoneNumbers lists the company's sender phone numbers.
func (s *Service) PhoneNumbers(ctx context.Context, p comms.Principal) ([]comms.PhoneNumber, error) {
	return s.store.ListPhoneNumbers(ctx, p.CompanyID)
}

// DeletePhoneNumber removes a sender phone number. Rows that still name it
// fail with unknown_resource when they are dispatched.
func (s *Service) DeletePhoneNumber(ctx context.Context, p comms.Principal, id string) error {
	u, ok := comms.UUIDString(id)
	if !ok {
		return fmt.Errorf("scheduling.DeletePhoneNumber: malformed id: %w", comms.ErrNotFound)
	}
	return s.store.DeletePhoneNumber(ctx, p.CompanyID, u)
}

// PutVoiceAgent creates or replaces an outbound voice-agent configuration;
// its phone number must be one of the company's with the voice capability.
func (s *Service) PutVoiceAgent(ctx context.Context, p comms.Principal, id string, body []byte) (comms.VoiceAgent, error) {
	id, err := contract.ResourceID(id)
	if err != nil {
		return comms.VoiceAgent{}, err
	}
	a, problems, err := contract.ParseVoiceAgent(body)
	if err != nil {
		return comms.VoiceAgent{}, err
	}
	if a.PhoneNumberID != "" {
		pn, err := s.store.GetPhoneNumber(ctx, p.CompanyID, a.PhoneNumberID)
		switch {
		case errors.Is(err, comms.ErrNotFound):
			problems.Add("phone_number_id", "names no phone number of this company")
		case err != nil:
			return comms.VoiceAgent{}, fmt.Errorf("store.GetPhoneNumber: %w", err)
		case !pn.HasCapability("voice"):
			problems.Add("phone_number_id", "names a phone number without the voice capability")
		}
	}
	if err := problems.Err(); err != nil {
		return comms.VoiceAgent{}, err
	}
	now := s.clock()
	a.ID, a.CompanyID, a.CreatedAt, a.UpdatedAt = id, p.CompanyID, now, now
	if err := s.store.PutVoiceAgent(ctx, a); err != nil {
		return comms.VoiceAgent{}, fmt.Errorf("store.PutVoiceAgent: %w", err)
	}
	return s.store.GetVoiceAgent(ctx, p.CompanyID, id)
}

// VoiceAgent returns one voice-agent configuration.
func (s *Service) VoiceAgent(ctx context.Context, p comms.Principal, id string) (comms.VoiceAgent, error) {
	u, ok := comms.UUIDString(id)
	if !ok {
		return comms.VoiceAgent{}, fmt.Errorf("scheduling.VoiceAgent: malformed id: %w", comms.ErrNotFound)
	}
	return s.store.GetVoiceAgent(ctx, p.CompanyID, u)
}

// VoiceAgents lists the company's voice-agent configurations.
func (s *Service) VoiceAgents(ctx context.Context, p comms.Principal) ([]comms.VoiceAgent, error) {
	return s.store.ListVoiceAgents(ctx, p.CompanyID)
}

// DeleteVoiceAgent removes a voice-agent configuration. Rows that still
// name it fail with unknown_resource when they are dispatched.
func (s *Service) DeleteVoiceAgent(ctx context.Context, p comms.Principal, id string) error {
	u, ok := comms.UUIDString(id)
	if !ok {
		return fmt.Errorf("scheduling.DeleteVoiceAgent: malformed id: %w", comms.ErrNotFound)
	}
	return s.store.DeleteVoiceAgent(ctx, p.CompanyID, u)
}

package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// A sending domain belongs to at most one company, together with its
// subdomains. The claims are rows of sending_domain_claims keyed by the
// domain with its labels reversed (comms.ReverseDomain: "com.example.mail"),
// so that a domain's subdomains are the key range [rev+".", rev+"/") ('/'
// follows '.' in ASCII). PutSettings checks and rewrites a company's claims
// in the transaction that writes its settings; transactions of the one
// writer connection run one at a time, so two companies can never claim a
// parent and its subdomain at once.

// migrationSendingDomainClaims is the migration that adds the claims
// (appended last; self-contained, so that it can be renumbered when
// migrations are merged: claimStoredSendingDomains runs right after it,
// through migrationAfter).
const migrationSendingDomainClaims = `
CREATE TABLE sending_domain_claims (
	domain_rev TEXT NOT NULL PRIMARY KEY,
	company_id TEXT NOT NULL REFERENCES companies (id)
) STRICT, WITHOUT ROWID;
CREATE INDEX sending_domain_claims_by_company ON sending_domain_claims (company_id, domain_rev);
`

// conflictingClaim finds a claim of another company on domain, a parent of
// it or a subdomain of it.
const conflictingClaim = `SELECT EXISTS (SELECT 1 FROM sending_domain_claims
	WHERE company_id <> ?1 AND (
		domain_rev IN (SELECT value FROM json_each(?2))
		OR (domain_rev >= ?3 AND domain_rev < ?4)))`

// claimSendingDomains makes the company's claims exactly domains, in tx:
// it returns a *comms.SendingDomainTakenError naming every domain another
// company holds (itself, a parent or a subdomain), having written nothing.
func claimSendingDomains(ctx context.Context, tx *sql.Tx, companyID string, domains []string) error {
	taken := &comms.SendingDomainTakenError{}
	revs := make([]string, len(domains))
	for i, d := range domains {
		rev := comms.ReverseDomain(d)
		revs[i] = rev
		exact := append([]string{rev}, reversed(comms.ParentDomains(d))...)
		list, err := json.Marshal(exact)
		if err != nil {
			return err
		}
		var held bool
		if err := tx.QueryRowContext(ctx, conflictingClaim, companyID, string(list), rev+".", rev+"/").Scan(&held); err != nil {
			return err
		}
		if held {
			taken.Indexes = append(taken.Indexes, i)
			taken.Domains = append(taken.Domains, d)
		}
	}
	if len(taken.Indexes) > 0 {
		return taken
	}
	keep, err := json.Marshal(revs)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM sending_domain_claims WHERE company_id = ?
		AND domain_rev NOT IN (SELECT value FROM json_each(?))`, companyID, string(keep)); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO sending_domain_claims (domain_rev, company_id)
		SELECT value, ? FROM json_each(?) WHERE true ON CONFLICT (domain_rev) DO NOTHING`, companyID, string(keep))
	return err
}

func reversed(domains []string) []string {
	out := make([]string, len(domains))
	for i, d := range domains {
		out[i] = comms.ReverseDomain(d)
	}
	return out
}

// claimStoredSendingDomains runs right after the migration that creates
// sending_domain_claims: it claims the domains every company's stored
// settings declare, companies in id order. Settings saved before the rule
// may overlap across companies; which company keeps such a domain is the
// operator's call, not the binary's, so the migration then fails naming
// every overlap and its companies, changes nothing, and the file stays at
// the previous schema version until the settings are told apart (as
// checkPhoneNumbersUnique does for phone numbers).
func claimStoredSendingDomains(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, settings FROM companies ORDER BY id`)
	if err != nil {
		return err
	}
	type company struct {
		id      string
		domains []string
	}
	var cos []company
	for rows.Next() {
		var id, raw string
		if err := rows.Scan(&id, &raw); err != nil {
			rows.Close()
			return err
		}
		var set comms.Settings
		if err := json.Unmarshal([]byte(raw), &set); err != nil {
			rows.Close()
			return fmt.Errorf("settings of company %s: %w", id, err)
		}
		cos = append(cos, company{id, set.SendingDomains})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	// owner finds who claimed a domain overlapping d, for the message.
	owner := func(companyID, d string) (string, string, error) {
		rev := comms.ReverseDomain(d)
		exact, err := json.Marshal(append([]string{rev}, reversed(comms.ParentDomains(d))...))
		if err != nil {
			return "", "", err
		}
		var holder, held string
		err = tx.QueryRowContext(ctx, `SELECT company_id, domain_rev FROM sending_domain_claims
			WHERE company_id <> ?1 AND (domain_rev IN (SELECT value FROM json_each(?2))
				OR (domain_rev >= ?3 AND domain_rev < ?4)) ORDER BY domain_rev LIMIT 1`,
			companyID, string(exact), rev+".", rev+"/").Scan(&holder, &held)
		return holder, comms.ReverseDomain(held), err
	}
	var overlaps []string
	for _, co := range cos {
		err := claimSendingDomains(ctx, tx, co.id, co.domains)
		taken, ok := err.(*comms.SendingDomainTakenError)
		if !ok {
			if err != nil {
				return err
			}
			continue
		}
		for _, d := range taken.Domains {
			holder, held, err := owner(co.id, d)
			if err != nil {
				return err
			}
			overlaps = append(overlaps, fmt.Sprintf("%s (company %s) overlaps %s (company %s)", d, co.id, held, holder))
		}
		// Claim what this company can, so that every overlap is reported.
		free := make([]string, 0, len(co.domains))
		for _, d := range co.domains {
			if !contains(taken.Domains, d) {
				free = append(free, d)
			}
		}
		if err := claimSendingDomains(ctx, tx, co.id, free); err != nil {
			return err
		}
	}
	if len(overlaps) > 0 {
		return fmt.Errorf("a sending domain may now belong to one company only, with its subdomains, and the stored settings of "+
			"several companies declare overlapping ones: %s; remove each from all but one company's settings.sending_domains "+
			"(e.g. with the sqlite3 shell: UPDATE companies SET settings = json_remove(settings, '$.sending_domains[N]') WHERE id = '…'), "+
			"then open the file again", strings.Join(overlaps, "; "))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

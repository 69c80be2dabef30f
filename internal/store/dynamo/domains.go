package dynamo

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dispatcherhq/dispatcher/internal/comms"
)

// A sending domain belongs to at most one company, together with its
// subdomains. Each declared domain is a claim item in one partition,
// pk DOMAINS, sk the domain with its labels reversed
// (comms.ReverseDomain: "com.example.mail"), so that a domain's
// subdomains are the sort keys that begin with its reversed form and ".".
// Settings are saved rarely, so one partition is enough.
//
// PutSettings reads the claims that could overlap each declared domain
// (GetItem of the domain and each parent; a Query for its subdomains) and
// then writes in one TransactWriteItems the settings, a conditional Put of
// each new claim, a conditional Delete of each released one and an Update
// of the partition's VERSION item on condition that it is still the
// version read first. Every change of claims bumps VERSION, so two claim
// transactions that read concurrently cannot both commit: the subdomain
// check is a read, and without the counter one company could claim
// example.com while another claims mail.example.com.
const (
	pkDomains           = "DOMAINS"
	skDomainsVersion    = "VERSION"
	entityDomainClaim   = "sending_domain_claim"
	entityDomainVersion = "sending_domain_claims_version"
	domainsLockKey      = pkDomains
)

// domainClaimItem is the claim of one sending domain.
type domainClaimItem struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	Entity    string `dynamodbav:"entity"`
	CompanyID string `dynamodbav:"company_id"`
	Domain    string `dynamodbav:"domain"`
}

func domainClaimKey(rev string) map[string]types.AttributeValue { return key(pkDomains, rev) }

// domainClaims reads, strongly consistently, the claims of the reversed
// domains revs and returns their holders by reversed domain.
func (s *Store) domainClaims(ctx context.Context, revs []string) (map[string]string, error) {
	held := make(map[string]string, len(revs))
	keys := make([]map[string]types.AttributeValue, len(revs))
	for i, r := range revs {
		keys[i] = domainClaimKey(r)
	}
	err := s.batchGetEach(ctx, keys, func(item map[string]types.AttributeValue) {
		held[strAttr(item, AttrSK)] = strAttr(item, "company_id")
	})
	if err != nil {
		return nil, err
	}
	return held, nil
}

// subdomainHeldByOther reports whether a company other than companyID
// claims a subdomain of the reversed domain rev (a strongly consistent
// Query of the sort keys beginning with rev + ".").
func (s *Store) subdomainHeldByOther(ctx context.Context, companyID, rev string) (bool, error) {
	in := &dynamodb.QueryInput{
		TableName:                s.table,
		ConsistentRead:           aws.Bool(true),
		KeyConditionExpression:   aws.String("#pk = :pk AND begins_with(#sk, :sub)"),
		FilterExpression:         aws.String("#co <> :me"),
		ProjectionExpression:     aws.String("#sk"),
		ExpressionAttributeNames: map[string]string{"#pk": AttrPK, "#sk": AttrSK, "#co": "company_id"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(pkDomains), ":sub": str(rev + "."), ":me": str(companyID),
		},
	}
	for {
		page, err := s.api.Query(ctx, in)
		if err != nil {
			return false, err
		}
		if len(page.Items) > 0 {
			return true, nil
		}
		if len(page.LastEvaluatedKey) == 0 {
			return false, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// domainsVersion reads the VERSION item's counter (0 when absent).
func (s *Store) domainsVersion(ctx context.Context) (int64, bool, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: s.table, Key: key(pkDomains, skDomainsVersion), ConsistentRead: aws.Bool(true),
	})
	if err != nil || out.Item == nil {
		return 0, false, err
	}
	n, ok := out.Item["version"].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false, fmt.Errorf("%s/%s item without a numeric version", pkDomains, skDomainsVersion)
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	return v, true, err
}

// storedSettings reads the company's settings attribute as stored (found
// false when there is no such company).
func (s *Store) storedSettings(ctx context.Context, companyID string) (string, bool, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: s.table, Key: companyKey(companyID), ConsistentRead: aws.Bool(true),
		ProjectionExpression:     aws.String("#pk, #settings"),
		ExpressionAttributeNames: map[string]string{"#pk": AttrPK, "#settings": "settings"},
	})
	if err != nil || out.Item == nil {
		return "", false, err
	}
	return strAttr(out.Item, "settings"), true, nil
}

// PutSettings replaces the company's settings document and makes its
// sending-domain claims exactly st.SendingDomains, in one
// TransactWriteItems (see the comment on the claims above): the company's
// Update (settings = the document read, so that the claims released are
// the ones it declared), and, when claims change, the VERSION Update
// (version = :read), a Put per new claim (attribute_not_exists(pk) OR
// company_id = :me) and a Delete per released claim (company_id = :me). A
// domain another company holds, itself or as a parent or subdomain, is a
// *comms.SendingDomainTakenError and nothing is written; ErrNotFound if
// there is no such company. A transaction that loses a race (the version,
// the settings or a claim moved) is read again and retried, up to
// maxDebitAttempts times, then ErrConflict. Within one process, claim
// writes queue on one lock (see the package documentation, "Credits":
// the conditions, not the lock, are what keep claims right).
func (s *Store) PutSettings(ctx context.Context, companyID string, st comms.Settings) error {
	const op = "PutSettings"
	settings, err := json.Marshal(st)
	if err != nil {
		return wrap(op, err)
	}
	unlock, err := s.claims.lock(ctx, domainsLockKey)
	if err != nil {
		return wrap(op, err)
	}
	defer unlock()
	for attempt := 1; ; attempt++ {
		items, err := s.settingsItems(ctx, companyID, st.SendingDomains, string(settings))
		if err != nil {
			return wrap(op, err)
		}
		_, err = s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			return nil
		}
		codes, _, ok := cancellation(err)
		if !ok && !conflicted(err, codes) {
			return wrap(op, err)
		}
		// The settings, the claims' version or a claim moved since they
		// were read (or a transaction conflict): read again, and decide
		// again.
		if attempt == maxDebitAttempts {
			return wrap(op, fmt.Errorf("%w: the sending-domain claims kept changing during %d attempts: %v", comms.ErrConflict, attempt, err))
		}
		if err := retryBackoff.Sleep(ctx, attempt); err != nil {
			return wrap(op, err)
		}
	}
}

// settingsItems reads what PutSettings decides on and returns the items of
// its transaction, or the refusal.
func (s *Store) settingsItems(ctx context.Context, companyID string, domains []string, settings string) ([]types.TransactWriteItem, error) {
	old, found, err := s.storedSettings(ctx, companyID)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, comms.ErrNotFound
	}
	var oldSet comms.Settings
	if old != "" {
		if err := json.Unmarshal([]byte(old), &oldSet); err != nil {
			return nil, fmt.Errorf("stored settings: %w", err)
		}
	}
	version, versioned, err := s.domainsVersion(ctx)
	if err != nil {
		return nil, err
	}
	// Every claim that could matter: each new domain and its parents, and
	// each domain declared before (which may be released).
	var revs []string
	for _, d := range domains {
		revs = append(revs, comms.ReverseDomain(d))
		for _, p := range comms.ParentDomains(d) {
			revs = append(revs, comms.ReverseDomain(p))
		}
	}
	for _, d := range oldSet.SendingDomains {
		revs = append(revs, comms.ReverseDomain(d))
	}
	slices.Sort(revs)
	held, err := s.domainClaims(ctx, slices.Compact(revs))
	if err != nil {
		return nil, err
	}
	other := func(rev string) bool { h, ok := held[rev]; return ok && h != companyID }
	taken := &comms.SendingDomainTakenError{}
	keep := make(map[string]bool, len(domains))
	var claim []string
	for i, d := range domains {
		rev := comms.ReverseDomain(d)
		keep[rev] = true
		conflict := other(rev)
		for _, p := range comms.ParentDomains(d) {
			conflict = conflict || other(comms.ReverseDomain(p))
		}
		if !conflict {
			if conflict, err = s.subdomainHeldByOther(ctx, companyID, rev); err != nil {
				return nil, err
			}
		}
		if conflict {
			taken.Indexes = append(taken.Indexes, i)
			taken.Domains = append(taken.Domains, d)
		} else if held[rev] != companyID {
			claim = append(claim, rev)
		}
	}
	if len(taken.Indexes) > 0 {
		return nil, taken
	}
	var release []string
	for _, d := range oldSet.SendingDomains {
		if rev := comms.ReverseDomain(d); !keep[rev] && held[rev] == companyID && !slices.Contains(release, rev) {
			release = append(release, rev)
		}
	}

	company := &types.Update{
		TableName: s.table, Key: companyKey(companyID),
		UpdateExpression:          aws.String("SET #settings = :settings"),
		ConditionExpression:       aws.String("#settings = :old"),
		ExpressionAttributeNames:  map[string]string{"#settings": "settings"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":settings": str(settings), ":old": str(old)},
	}
	if old == "" { // an item without settings (still a company: it was found)
		company.ConditionExpression = aws.String("attribute_exists(#pk) AND attribute_not_exists(#settings)")
		company.ExpressionAttributeNames["#pk"] = AttrPK
		delete(company.ExpressionAttributeValues, ":old")
	}
	items := []types.TransactWriteItem{{Update: company}}
	if len(claim) == 0 && len(release) == 0 {
		return items, nil
	}
	bump := &types.Update{
		TableName: s.table, Key: key(pkDomains, skDomainsVersion),
		UpdateExpression:          aws.String("SET #v = :next, #entity = :entity"),
		ExpressionAttributeNames:  map[string]string{"#v": "version", "#entity": attrEntity},
		ExpressionAttributeValues: map[string]types.AttributeValue{":next": num(version + 1), ":entity": str(entityDomainVersion)},
	}
	if versioned {
		bump.ConditionExpression = aws.String("#v = :read")
		bump.ExpressionAttributeValues[":read"] = num(version)
	} else {
		bump.ConditionExpression = aws.String("attribute_not_exists(#pk)")
		bump.ExpressionAttributeNames["#pk"] = AttrPK
	}
	items = append(items, types.TransactWriteItem{Update: bump})
	for _, rev := range claim {
		item, err := attributevalue.MarshalMap(domainClaimItem{
			PK: pkDomains, SK: rev, Entity: entityDomainClaim, CompanyID: companyID, Domain: comms.ReverseDomain(rev),
		})
		if err != nil {
			return nil, err
		}
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName: s.table, Item: item,
			ConditionExpression:       aws.String("attribute_not_exists(#pk) OR #co = :me"),
			ExpressionAttributeNames:  map[string]string{"#pk": AttrPK, "#co": "company_id"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":me": str(companyID)},
		}})
	}
	for _, rev := range release {
		items = append(items, types.TransactWriteItem{Delete: &types.Delete{
			TableName: s.table, Key: domainClaimKey(rev),
			ConditionExpression:       aws.String("#co = :me"),
			ExpressionAttributeNames:  map[string]string{"#co": "company_id"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":me": str(companyID)},
		}})
	}
	return items, nil
}
